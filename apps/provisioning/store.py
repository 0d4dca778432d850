"""The provisioning app's state across restarts, in one SQLite file.

Each change is one row (its JSON body, written in one transaction at every
transition, before the transition acts); the queue of recommendations is one
``state`` row; the change counter another. A file written by a newer schema is
refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3

from apps.provisioning.changes import Change
from controller.state import open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, body TEXT NOT NULL);
"""


class ProvisioningStoreError(RuntimeError):
    """The provisioning state file cannot be opened, read or written; the message says why."""


class ProvisioningStore:
    def __init__(self, path: str):
        self.path = path
        self._db = open_sqlite(path, _SCHEMA, "provisioning state", ProvisioningStoreError, SCHEMA_VERSION)

    def put_change(self, seq: int, change: Change) -> None:
        body = json.dumps(change.as_json(), sort_keys=True)
        self._write("INSERT OR REPLACE INTO changes (seq, id, body) VALUES (?, ?, ?)", (seq, change.id, body))

    def changes(self) -> list[tuple[int, Change]]:
        try:
            rows = self._db.execute("SELECT seq, body FROM changes ORDER BY seq").fetchall()
            return [(seq, Change.from_json(json.loads(body))) for seq, body in rows]
        except (sqlite3.Error, ValueError, TypeError) as err:
            raise ProvisioningStoreError(
                f"provisioning state {self.path}: cannot read changes: {err}"
            ) from None

    def get(self, key: str, default=None):
        try:
            row = self._db.execute("SELECT body FROM state WHERE key = ?", (key,)).fetchone()
            return default if row is None else json.loads(row[0])
        except (sqlite3.Error, ValueError) as err:
            raise ProvisioningStoreError(
                f"provisioning state {self.path}: cannot read {key}: {err}"
            ) from None

    def put(self, key: str, body) -> None:
        self._write("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, json.dumps(body, sort_keys=True)))

    def _write(self, sql: str, args: tuple) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as err:
            raise ProvisioningStoreError(f"provisioning state {self.path}: {err}") from None

    def close(self) -> None:
        self._db.close()
