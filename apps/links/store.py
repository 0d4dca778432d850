"""Which spare links are in service, across restarts, in one SQLite file.

One row per spare that was ever set (its name, in service or not, when); a spare
the file does not name is out of service. Written in one statement before the
change acts, so a restart finds what was last asked for. A file written by a newer
schema is refused rather than misread (``controller.state.open_sqlite``).
"""

from __future__ import annotations

import sqlite3

from controller.state import open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS spares (
    name TEXT PRIMARY KEY, in_service INTEGER NOT NULL, changed_s REAL NOT NULL);
"""


class LinksStoreError(RuntimeError):
    """The links state file cannot be opened, read or written; the message says why."""


class LinksStore:
    def __init__(self, path: str):
        self.path = path
        self._db = open_sqlite(path, _SCHEMA, "links state", LinksStoreError, SCHEMA_VERSION)

    def in_service(self) -> dict[str, bool]:
        """Spare name -> in service, for every spare ever set."""
        try:
            return {name: bool(on) for name, on in self._db.execute("SELECT name, in_service FROM spares")}
        except sqlite3.Error as err:
            raise LinksStoreError(f"links state {self.path}: cannot read: {err}") from None

    def put(self, name: str, in_service: bool, now: float) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO spares VALUES (?, ?, ?)", (name, int(in_service), now))
        except sqlite3.Error as err:
            raise LinksStoreError(f"links state {self.path}: cannot write {name}: {err}") from None

    def close(self) -> None:
        self._db.close()
