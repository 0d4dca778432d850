"""Stitches that survive a controller restart, in one SQLite file.

One row per stitch (its record as JSON: what was asked, what the policy said, the
VNI, data-plane index and underlay plane it was given, its state); ``put`` and
``delete`` are one transaction each. The sites' last advertisements are kept too
(``put_site``), so a restarted controller knows the sites at once and its switches
keep the stitches' flows while the route managers come back; a site that does not
advertise again expires as usual. The schema version is kept in ``meta``; a file
written by a newer version is refused rather than misread.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass, field

from controller.state import open_sqlite

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stitches (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (site TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


class StitchStoreError(RuntimeError):
    """The stitching state file cannot be opened, read or written; the message says why."""


@dataclass
class StitchRecord:
    id: str
    tenant: str
    kind: str                           # direct, segment, bandwidth
    a_site: str
    a_vnid: int
    b_site: str
    b_vnid: int
    a_host: str = ""                    # direct stitches
    b_host: str = ""
    mbps: float = 0.0                   # bandwidth stitches: the reservation
    min_mbps: float = 0.0               # requirements the path must meet
    max_rtt_ms: float = 0.0             # 0: none
    encrypted: bool = False
    psk: str = ""                       # ovs-ipsec encryption: the stitch's pre-shared key
    rule: str = ""                      # the policy rule that allowed it
    vni: int = 0
    index: int = 0
    plane: int = 0                      # 0: no underlay path at the moment
    state: str = "ESTABLISHING"         # ESTABLISHING, ESTABLISHED, DEGRADED
    detail: str = ""                    # why it is in that state
    created_at: float = 0.0
    changed_at: float = 0.0
    history: list[str] = field(default_factory=list)     # its last few lifecycle steps

    @classmethod
    def from_dict(cls, data: dict) -> "StitchRecord":
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class StitchStore:
    def __init__(self, path: str):
        self.path = path
        self._db = open_sqlite(path, _SCHEMA, "stitching state", StitchStoreError, SCHEMA_VERSION)

    def load(self) -> list[StitchRecord]:
        try:
            rows = self._db.execute("SELECT id, body FROM stitches ORDER BY id").fetchall()
            return [StitchRecord.from_dict(json.loads(body)) for _, body in rows]
        except (sqlite3.Error, ValueError, TypeError) as err:
            raise StitchStoreError(f"stitching state {self.path}: cannot read stitches: {err}") from None

    def put(self, record: StitchRecord) -> None:
        self._write("INSERT OR REPLACE INTO stitches VALUES (?, ?)", (record.id, json.dumps(asdict(record))))

    def put_site(self, site: str, advertisement: dict) -> None:
        self._write("INSERT OR REPLACE INTO sites VALUES (?, ?)", (site, json.dumps(advertisement)))

    def load_sites(self) -> list[dict]:
        try:
            return [json.loads(body) for (body,) in self._db.execute("SELECT body FROM sites ORDER BY site")]
        except (sqlite3.Error, ValueError) as err:
            raise StitchStoreError(f"stitching state {self.path}: cannot read sites: {err}") from None

    def delete(self, stitch_id: str) -> None:
        self._write("DELETE FROM stitches WHERE id = ?", (stitch_id,))

    def _write(self, sql: str, args: tuple) -> None:
        try:
            self._db.execute(sql, args)
        except sqlite3.Error as err:
            raise StitchStoreError(f"stitching state {self.path}: {err}") from None

    def close(self) -> None:
        self._db.close()
