"""Durable state of the slices capability in one SQLite file.

Slices, pool members, which slice each member serves, VIP ranges with their
member addresses, and the scaling policy's timers survive a controller restart.
Each slice also keeps a small integer, its data-plane index (group, meter and
cookie numbers derive from it, so they survive a restart unchanged), and members
being drained after a scale-down keep their drain deadline. Every
``put_*``/``del_*`` call is one transaction; ``with store.transaction():``
groups several into one, so a scaling step (members allocated, addresses
assigned, policy timers) is stored completely or not at all. ``load()`` returns
the rebuilt ``ResourcePool``, ``VipAllocator``, slices and policy state.

The schema keeps the pieces consistent by itself: allocations, VIP ranges and
policy timers belong to a slice and disappear with it (``del_slice``); a member
serving a slice cannot be deleted; an address is assigned once. The schema
version is kept in ``meta``; a file written by a newer version is refused
rather than misread.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apps.slices.model import Slice, SliceError, slice_from_dict
from apps.slices.pool import Member, ResourcePool
from apps.slices.scaling import ScalingPolicy
from apps.slices.vips import VipAllocator, VipRange
from controller.state import open_sqlite

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1

# Foreign keys are deferred to COMMIT so that the rows of one transaction may be
# written in any order.
_FK = "DEFERRABLE INITIALLY DEFERRED"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS slices (
    name TEXT PRIMARY KEY, client TEXT NOT NULL, vip_cidr TEXT NOT NULL, bandwidth_mbps REAL NOT NULL,
    per_member_mbps REAL NOT NULL, pool TEXT NOT NULL, max_members INTEGER NOT NULL,
    min_members INTEGER NOT NULL, priority TEXT NOT NULL, sla_quantile REAL NOT NULL,
    dissolve_after_s REAL NOT NULL);
CREATE TABLE IF NOT EXISTS members (
    host_id TEXT PRIMARY KEY, pool TEXT NOT NULL, ipv4 TEXT NOT NULL, labels TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS allocations (
    host_id TEXT PRIMARY KEY REFERENCES members (host_id) {_FK},
    slice_name TEXT NOT NULL REFERENCES slices (name) ON DELETE CASCADE {_FK});
CREATE TABLE IF NOT EXISTS vip_ranges (
    slice_name TEXT PRIMARY KEY REFERENCES slices (name) ON DELETE CASCADE {_FK},
    cidr TEXT NOT NULL, next_offset INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vip_assignments (
    slice_name TEXT NOT NULL REFERENCES vip_ranges (slice_name) ON DELETE CASCADE {_FK},
    member_id TEXT NOT NULL, address TEXT NOT NULL UNIQUE, PRIMARY KEY (slice_name, member_id));
CREATE TABLE IF NOT EXISTS vip_reclaimed (
    slice_name TEXT NOT NULL REFERENCES vip_ranges (slice_name) ON DELETE CASCADE {_FK},
    seq INTEGER NOT NULL, address TEXT NOT NULL, PRIMARY KEY (slice_name, seq));
CREATE TABLE IF NOT EXISTS policy_state (
    slice_name TEXT PRIMARY KEY REFERENCES slices (name) ON DELETE CASCADE {_FK},
    state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS slice_ids (
    slice_name TEXT PRIMARY KEY REFERENCES slices (name) ON DELETE CASCADE {_FK},
    idx INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS draining (host_id TEXT PRIMARY KEY, until REAL NOT NULL);
"""

_SLICE_COLUMNS = ("name", "client", "vip_cidr", "bandwidth_mbps", "per_member_mbps", "pool", "max_members",
                  "min_members", "priority", "sla_quantile", "dissolve_after_s")


class StoreError(RuntimeError):
    """The slices state file cannot be used; the message names the file and the cause."""


@dataclass
class StoredSlices:
    """Everything ``load()`` found, rebuilt into working objects."""

    slices: dict[str, Slice]
    pool: ResourcePool
    vips: VipAllocator
    policy_state: dict[str, Any] | None     # ScalingPolicy.to_dict() form; None if never saved
    ids: dict[str, int] = field(default_factory=dict)          # slice name -> data-plane index
    draining: dict[str, float] = field(default_factory=dict)   # host_id -> drain deadline (Unix s)

    def policy(self, **params: float) -> ScalingPolicy:
        """The scaling policy with its stored timers; ``params`` (from the current
        configuration) take precedence over the stored parameters."""
        if self.policy_state is None:
            return ScalingPolicy(**params)
        return ScalingPolicy.from_dict(self.policy_state, **params)


class SliceStore:
    """SQLite persistence of the slices capability (see the module docstring)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        self._depth = 0
        self.db = open_sqlite(self.path, _SCHEMA, "slices state file", StoreError, SCHEMA_VERSION,
                              foreign_keys=True)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group writes into one atomic transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise StoreError(f"slices state file {self.path}: cannot begin a transaction: {err}") from None
        self._depth = 1
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException as err:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(err, sqlite3.Error):
                raise StoreError(f"slices state file {self.path}: change not saved: {err}") from err
            raise
        finally:
            self._depth = 0

    # --- slices ---------------------------------------------------------------------

    def put_slice(self, slice_: Slice) -> None:
        """Insert or update a slice definition (its allocations and ranges are kept)."""
        row = slice_.to_dict()
        columns = ", ".join(_SLICE_COLUMNS)
        marks = ", ".join("?" * len(_SLICE_COLUMNS))
        updates = ", ".join(f"{c}=excluded.{c}" for c in _SLICE_COLUMNS[1:])
        # An upsert, not INSERT OR REPLACE: a replace deletes the row first, and the
        # cascade would take the slice's allocations and range with it.
        with self.transaction():
            self.db.execute(f"INSERT INTO slices ({columns}) VALUES ({marks}) "  # noqa: S608 - fixed columns
                            f"ON CONFLICT (name) DO UPDATE SET {updates}", [row[c] for c in _SLICE_COLUMNS])

    def put_slice_id(self, name: str, idx: int) -> None:
        """Record the slice's data-plane index (its group, meter and cookie numbers)."""
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO slice_ids VALUES (?, ?)", (name, idx))

    def put_draining(self, host_id: str, until: float | None) -> None:
        """Mark an allocated member as draining until ``until``; None clears the mark."""
        with self.transaction():
            self.db.execute("DELETE FROM draining WHERE host_id=?", (host_id,))
            if until is not None:
                self.db.execute("INSERT INTO draining VALUES (?, ?)", (host_id, until))

    def del_slice(self, name: str) -> None:
        """Delete a slice with its allocations, VIP range, addresses and policy timers."""
        with self.transaction():
            self.db.execute("DELETE FROM slices WHERE name=?", (name,))

    # --- pool -----------------------------------------------------------------------

    def put_member(self, member: Member) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO members VALUES (?, ?, ?, ?) ON CONFLICT (host_id) DO UPDATE SET "
                "pool=excluded.pool, ipv4=excluded.ipv4, labels=excluded.labels",
                (member.host_id, member.pool, str(member.ipv4), json.dumps(dict(member.labels))))

    def del_member(self, host_id: str) -> None:
        """Delete a member; refused (``StoreError``) while it serves a slice."""
        with self.transaction():
            self.db.execute("DELETE FROM members WHERE host_id=?", (host_id,))

    def put_allocations(self, slice_name: str, host_ids: Iterable[str]) -> None:
        """Record that exactly ``host_ids`` serve ``slice_name`` (replaces the slice's set)."""
        with self.transaction():
            self.db.execute("DELETE FROM allocations WHERE slice_name=?", (slice_name,))
            self.db.executemany("INSERT INTO allocations VALUES (?, ?)",
                                [(h, slice_name) for h in sorted(set(host_ids))])

    # --- VIPs -----------------------------------------------------------------------

    def put_vip_range(self, state: VipRange) -> None:
        """Replace a slice's range with ``state`` (from ``VipAllocator.range_state``)."""
        with self.transaction():
            self._del_vip_range(state.slice_name)
            self.db.execute("INSERT INTO vip_ranges VALUES (?, ?, ?)",
                            (state.slice_name, str(state.cidr), state.next_offset))
            self.db.executemany("INSERT INTO vip_assignments VALUES (?, ?, ?)",
                                [(state.slice_name, m, str(a)) for m, a in state.assignments])
            self.db.executemany("INSERT INTO vip_reclaimed VALUES (?, ?, ?)",
                                [(state.slice_name, i, str(a)) for i, a in enumerate(state.reclaimed)])

    def del_vip_range(self, slice_name: str) -> None:
        with self.transaction():
            self._del_vip_range(slice_name)

    def _del_vip_range(self, slice_name: str) -> None:
        for table in ("vip_assignments", "vip_reclaimed", "vip_ranges"):
            self.db.execute(f"DELETE FROM {table} WHERE slice_name=?", (slice_name,))  # noqa: S608

    # --- policy ---------------------------------------------------------------------

    def put_policy(self, policy: ScalingPolicy) -> None:
        """Replace the stored policy parameters and timers.

        Timers of slices that are not stored are not kept: they would belong to
        nothing after a restart.
        """
        state = policy.to_dict()
        timers = state.pop("slices")
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('scaling_policy', ?)", (json.dumps(state),))
            self.db.execute("DELETE FROM policy_state")
            self.db.executemany(
                "INSERT INTO policy_state SELECT ?, ? WHERE EXISTS (SELECT 1 FROM slices WHERE name=?)",
                [(name, json.dumps(t), name) for name, t in timers.items()])

    # --- load -----------------------------------------------------------------------

    def load(self) -> StoredSlices:
        """Everything stored, rebuilt; a row that no longer validates raises ``StoreError``."""
        try:
            return self._load()
        except (SliceError, ValueError, TypeError) as err:
            raise StoreError(f"slices state file {self.path}: unusable stored state: {err}") from None
        except sqlite3.Error as err:
            raise StoreError(f"slices state file {self.path}: {err}") from None

    def _load(self) -> StoredSlices:
        columns = ", ".join(_SLICE_COLUMNS)
        slices = {}
        for row in self.db.execute(f"SELECT {columns} FROM slices ORDER BY name"):  # noqa: S608
            slices[row[0]] = slice_from_dict(dict(zip(_SLICE_COLUMNS, row)))
        members = [Member(host_id=h, pool=p, ipv4=ip, labels=json.loads(labels)) for h, p, ip, labels in
                   self.db.execute("SELECT host_id, pool, ipv4, labels FROM members ORDER BY host_id")]
        allocations = dict(self.db.execute("SELECT host_id, slice_name FROM allocations"))
        pool = ResourcePool.restore(members, allocations)

        assigned: dict[str, list[tuple[str, ipaddress.IPv4Address]]] = {}
        for name, member_id, address in self.db.execute(
                "SELECT slice_name, member_id, address FROM vip_assignments ORDER BY slice_name, member_id"):
            assigned.setdefault(name, []).append((member_id, ipaddress.IPv4Address(address)))
        reclaimed: dict[str, list[ipaddress.IPv4Address]] = {}
        for name, address in self.db.execute(
                "SELECT slice_name, address FROM vip_reclaimed ORDER BY slice_name, seq"):
            reclaimed.setdefault(name, []).append(ipaddress.IPv4Address(address))
        ranges = [VipRange(name, ipaddress.IPv4Network(cidr), offset, tuple(assigned.get(name, ())),
                           tuple(reclaimed.get(name, ())))
                  for name, cidr, offset in self.db.execute(
                      "SELECT slice_name, cidr, next_offset FROM vip_ranges ORDER BY slice_name")]
        vips = VipAllocator.restore(ranges)

        policy_state = None
        row = self.db.execute("SELECT value FROM meta WHERE key='scaling_policy'").fetchone()
        if row is not None:
            policy_state = json.loads(row[0])
            policy_state["slices"] = {name: json.loads(state) for name, state in self.db.execute(
                "SELECT slice_name, state FROM policy_state ORDER BY slice_name")}
        ids = dict(self.db.execute("SELECT slice_name, idx FROM slice_ids"))
        # A drain mark outlives nothing: only members still allocated are draining.
        draining = {h: until for h, until in self.db.execute("SELECT host_id, until FROM draining")
                    if h in allocations}
        LOG.info("slices state %s: %d slice(s), %d member(s), %d allocated", self.path, len(slices),
                 len(members), len(allocations))
        return StoredSlices(slices, pool, vips, policy_state, ids, draining)

    def close(self) -> None:
        self.db.close()
