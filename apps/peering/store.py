"""The peering app's state across restarts, in one SQLite file.

Sessions (state, override, the last request's SLA), the plan in force (each prefix
group's exit, when it moved, its stable number) and the transit samples of the
billing window live in ``state`` rows (one JSON body each, one transaction per
write); decisions are appended to ``decisions`` and only the newest ``KEEP``
survive. A file written by a newer schema is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3

from controller.state import open_sqlite

SCHEMA_VERSION = 1
KEEP = 2000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS decisions (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
"""


class PeeringStoreError(RuntimeError):
    """The peering state file cannot be opened, read or written; the message says why."""


class PeeringStore:
    def __init__(self, path: str):
        self.path = path
        self._db = open_sqlite(path, _SCHEMA, "peering state", PeeringStoreError, SCHEMA_VERSION)

    def get(self, key: str, default=None):
        try:
            row = self._db.execute("SELECT body FROM state WHERE key = ?", (key,)).fetchone()
            return default if row is None else json.loads(row[0])
        except (sqlite3.Error, ValueError) as err:
            raise PeeringStoreError(f"peering state {self.path}: cannot read {key}: {err}") from None

    def put(self, key: str, body) -> None:
        self._write("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(body, sort_keys=True)))

    def add_decision(self, body: dict) -> None:
        self._write("INSERT INTO decisions (body) VALUES (?)", (json.dumps(body, sort_keys=True),))
        self._write("DELETE FROM decisions WHERE seq <= (SELECT MAX(seq) FROM decisions) - ?", (KEEP,))

    def decisions(self, limit: int = KEEP) -> list[dict]:
        """The newest ``limit`` decisions, oldest first."""
        try:
            rows = self._db.execute(
                "SELECT body FROM decisions ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()
            return [json.loads(body) for (body,) in reversed(rows)]
        except (sqlite3.Error, ValueError) as err:
            raise PeeringStoreError(f"peering state {self.path}: cannot read decisions: {err}") from None

    def _write(self, sql: str, args: tuple) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as err:
            raise PeeringStoreError(f"peering state {self.path}: {err}") from None

    def close(self) -> None:
        self._db.close()
