"""Durable controller state in an embedded SQLite file.

What the controller knows and wants survives a restart or a crash: switches and
their ports, links with their capacities, learned hosts, and the host pairs whose
paths are installed, and the ports it holds administratively down for apps
(``controller.ports``: a released spare is brought up after a restart too). The
core saves a whole snapshot in one transaction whenever something changed
(batched by the tick loop), so the file always holds a consistent picture, never
half of an update. On start the core restores it as
*provisional*: switches count as disconnected and links are held for a grace
period, so switches that reconnect are reconciled against the same flows they
already have and traffic does not notice the restart.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ports (
    dp_id INTEGER NOT NULL, port_no INTEGER NOT NULL, name TEXT NOT NULL, hw_addr TEXT NOT NULL,
    up INTEGER NOT NULL, speed_mbps REAL NOT NULL, lldp_seen INTEGER NOT NULL,
    PRIMARY KEY (dp_id, port_no));
CREATE TABLE IF NOT EXISTS switches (dp_id INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS links (
    src_dp INTEGER NOT NULL, src_port INTEGER NOT NULL, dst_dp INTEGER NOT NULL, dst_port INTEGER NOT NULL,
    capacity_mbps REAL NOT NULL, capacity_source TEXT NOT NULL, PRIMARY KEY (src_dp, src_port));
CREATE TABLE IF NOT EXISTS hosts (
    mac TEXT PRIMARY KEY, dp_id INTEGER NOT NULL, port_no INTEGER NOT NULL, ipv4 TEXT NOT NULL,
    last_seen REAL NOT NULL);
CREATE TABLE IF NOT EXISTS pairs (src TEXT NOT NULL, dst TEXT NOT NULL, PRIMARY KEY (src, dst));
-- Added without a version bump: a file from before it gains the empty table on open.
CREATE TABLE IF NOT EXISTS held_ports (dp_id INTEGER NOT NULL, port_no INTEGER NOT NULL,
    PRIMARY KEY (dp_id, port_no));
"""


class StateError(RuntimeError):
    """The state file cannot be opened or was written by an incompatible version."""


@dataclass
class Snapshot:
    switches: dict[int, list[dict]] = field(default_factory=dict)   # dp_id -> port dicts
    links: list[tuple] = field(default_factory=list)   # (src_dp, src_port, dst_dp, dst_port, cap, source)
    hosts: list[dict] = field(default_factory=list)
    pairs: set[tuple[str, str]] = field(default_factory=set)
    held_ports: set[tuple[int, int]] = field(default_factory=set)  # (dp_id, port_no) we hold down

    def __bool__(self) -> bool:
        return bool(self.switches or self.hosts or self.pairs or self.held_ports)


def open_sqlite(path: str, schema: str, label: str, error: type[Exception], version: int,
                foreign_keys: bool = False) -> sqlite3.Connection:
    """Open (creating its directory) a WAL-mode SQLite file, apply ``schema`` (which
    must create a ``meta(key, value)`` table) and check the file's schema version, the
    same way for every store: a new file is stamped with ``version``; a file of another
    version is refused rather than misread (newer: written by a later release; older:
    there is no migration yet). Failures raise ``error`` naming ``label``, the path and
    the cause."""
    if path != ":memory:":
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise error(f"{label} {path}: cannot create its directory: {err.strerror}") from None
    try:
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        if foreign_keys:
            db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(version),))
            return db
    except sqlite3.Error as err:
        raise error(f"{label} {path}: {err}") from None
    problem = _version_problem(row[0], version)
    if problem:
        db.close()
        raise error(f"{label} {path}: {problem}")
    return db


def _version_problem(stored: str, version: int) -> str | None:
    try:
        found = int(stored)
    except ValueError:
        return f"schema version {stored!r} is not a number"
    if found > version:
        return f"written by a newer version (schema version {found}); this version reads schema {version}"
    if found < version:
        return f"schema version {found} has no migration to {version}"
    return None


class StateStore:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = open_sqlite(self.path, _SCHEMA, "state file", StateError, SCHEMA_VERSION)
        self.saves = 0

    def load(self) -> Snapshot:
        snap = Snapshot()
        for (dp_id,) in self.db.execute("SELECT dp_id FROM switches ORDER BY dp_id"):
            snap.switches[dp_id] = []
        for dp_id, port_no, name, hw_addr, up, speed, lldp_seen in self.db.execute(
                "SELECT dp_id, port_no, name, hw_addr, up, speed_mbps, lldp_seen FROM ports "
                "ORDER BY dp_id, port_no"):
            if dp_id in snap.switches:
                snap.switches[dp_id].append({"port_no": port_no, "name": name, "hw_addr": hw_addr,
                                             "up": bool(up), "speed_mbps": speed,
                                             "lldp_seen": bool(lldp_seen)})
        snap.links = [tuple(r) for r in self.db.execute(
            "SELECT src_dp, src_port, dst_dp, dst_port, capacity_mbps, capacity_source FROM links "
            "ORDER BY src_dp, src_port")]
        for mac, dp_id, port_no, ipv4, last_seen in self.db.execute(
                "SELECT mac, dp_id, port_no, ipv4, last_seen FROM hosts ORDER BY mac"):
            snap.hosts.append({"mac": mac, "dp_id": dp_id, "port_no": port_no,
                               "ipv4": json.loads(ipv4), "last_seen": last_seen})
        snap.pairs = {(s, d) for s, d in self.db.execute("SELECT src, dst FROM pairs")}
        snap.held_ports = {(dp, port) for dp, port in
                           self.db.execute("SELECT dp_id, port_no FROM held_ports")}
        return snap

    def save(self, snap: Snapshot) -> None:
        """Replace the stored state with this snapshot, atomically."""
        cur = self.db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            for table in ("switches", "ports", "links", "hosts", "pairs", "held_ports"):
                cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            cur.executemany("INSERT INTO switches VALUES (?)", [(dp,) for dp in snap.switches])
            cur.executemany("INSERT INTO ports VALUES (?, ?, ?, ?, ?, ?, ?)", [
                (dp, p["port_no"], p["name"], p["hw_addr"], int(p["up"]), p["speed_mbps"],
                 int(p["lldp_seen"]))
                for dp, ports in snap.switches.items() for p in ports])
            cur.executemany("INSERT INTO links VALUES (?, ?, ?, ?, ?, ?)", snap.links)
            cur.executemany("INSERT INTO hosts VALUES (?, ?, ?, ?, ?)", [
                (h["mac"], h["dp_id"], h["port_no"], json.dumps(sorted(h["ipv4"])), h["last_seen"])
                for h in snap.hosts])
            cur.executemany("INSERT INTO pairs VALUES (?, ?)", sorted(snap.pairs))
            cur.executemany("INSERT INTO held_ports VALUES (?, ?)", sorted(snap.held_ports))
            cur.execute("COMMIT")
        except sqlite3.Error:
            cur.execute("ROLLBACK")
            raise
        self.saves += 1

    def close(self) -> None:
        self.db.close()
