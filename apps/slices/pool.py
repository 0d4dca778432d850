"""Resource pools: named sets of member hosts that slices draw their members from.

A member is a host able to serve a slice (``host_id`` is usually its MAC), with
its IPv4 address and optional labels. A host belongs to exactly one pool and is
allocated to at most one slice at a time. Allocation is all-or-nothing and
deterministic: the free members of the pool sorted by ``host_id``, so the same
state always yields the same choice. A member that serves a slice cannot be
unregistered; release it first. A slice draws all its members from one pool.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from apps.slices.model import (Conflict, Exhausted, InvalidMember, InvalidSlice, check_count, check_ipv4,
                               check_text)


@dataclass(frozen=True)
class Member:
    """A host that can serve slices; immutable (re-register to change it)."""

    host_id: str
    pool: str
    ipv4: ipaddress.IPv4Address
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            set_(self, "host_id", check_text("host_id", self.host_id, max_chars=128))
            set_(self, "pool", check_text("pool", self.pool, max_chars=63))
            set_(self, "ipv4", check_ipv4("ipv4", self.ipv4))
        except InvalidSlice as err:
            raise InvalidMember(err.field, err.message) from None
        if not isinstance(self.labels, Mapping):
            raise InvalidMember("labels", f"must be a mapping, got {type(self.labels).__name__}")
        for key, value in self.labels.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise InvalidMember(f"labels.{key}", "label keys and values must be strings")
        set_(self, "labels", MappingProxyType(dict(sorted(self.labels.items()))))

    def to_dict(self) -> dict[str, Any]:
        return {"host_id": self.host_id, "pool": self.pool, "ipv4": str(self.ipv4),
                "labels": dict(self.labels)}


class ResourcePool:
    """All pools, their members and which slice each member serves."""

    def __init__(self) -> None:
        self._members: dict[str, Member] = {}          # host_id -> member
        self._owner: dict[str, str] = {}               # host_id -> slice name
        self.version = 0                               # bumped on every change worth saving

    # --- membership -----------------------------------------------------------------

    def register(self, pool: str, host_id: str, ipv4: str | ipaddress.IPv4Address,
                 labels: Mapping[str, str] | None = None) -> Member:
        """Add a host to ``pool``, or update its address and labels if already there.

        A host already in another pool raises ``Conflict`` naming both pools.
        """
        member = Member(host_id=host_id, pool=pool, ipv4=ipv4, labels=labels or {})
        old = self._members.get(member.host_id)
        if old is not None and old.pool != member.pool:
            raise Conflict(f"member {member.host_id!r}",
                           f"already in pool {old.pool!r}, cannot join pool {member.pool!r}")
        if old != member:
            self._members[member.host_id] = member
            self.version += 1
        return member

    def unregister(self, host_id: str) -> Member | None:
        """Remove a host; ``None`` if unknown. A host serving a slice raises ``Conflict``."""
        member = self._members.get(host_id)
        if member is None:
            return None
        owner = self._owner.get(host_id)
        if owner is not None:
            raise Conflict(f"member {host_id!r}",
                           f"serves slice {owner!r} in pool {member.pool!r}; release it first")
        del self._members[host_id]
        self.version += 1
        return member

    def member(self, host_id: str) -> Member | None:
        return self._members.get(host_id)

    def pools(self) -> list[str]:
        return sorted({m.pool for m in self._members.values()})

    def members(self, pool: str | None = None) -> list[Member]:
        """Members of ``pool`` (all pools if None), sorted by ``host_id``."""
        return [m for _, m in sorted(self._members.items()) if pool is None or m.pool == pool]

    def free(self, pool: str) -> list[Member]:
        """Members of ``pool`` serving no slice, in allocation order."""
        return [m for m in self.members(pool) if m.host_id not in self._owner]

    # --- allocation -----------------------------------------------------------------

    def allocate(self, pool: str, slice_name: str, count: int) -> list[Member]:
        """Give ``count`` free members of ``pool`` to ``slice_name``, all or nothing.

        Raises ``Exhausted`` naming the pool with the wanted and available counts
        (an unknown pool has none available), and ``Conflict`` if the slice
        already holds members of another pool.
        """
        count = check_count("count", count, ge=0)
        held = {m.pool for m in self.members_of(slice_name)}
        if held - {pool}:
            raise Conflict(f"slice {slice_name!r}",
                           f"holds members of pool {sorted(held)[0]!r}, cannot take members of pool {pool!r}")
        free = self.free(pool)
        if count > len(free):
            raise Exhausted(f"pool {pool!r}",
                            f"wanted {count} member(s) for slice {slice_name!r}, {len(free)} available",
                            wanted=count, available=len(free))
        chosen = free[:count]
        for m in chosen:
            self._owner[m.host_id] = slice_name
        if chosen:
            self.version += 1
        return chosen

    def release(self, slice_name: str, host_ids: Iterable[str]) -> list[str]:
        """Return members of ``slice_name`` to their pool; the host ids actually released.

        Hosts that serve no slice are skipped (releasing twice is harmless); a host
        serving another slice raises ``Conflict`` and nothing is released.
        """
        host_ids = sorted(set(host_ids))
        for host_id in host_ids:
            owner = self._owner.get(host_id)
            if owner is not None and owner != slice_name:
                raise Conflict(f"member {host_id!r}",
                               f"serves slice {owner!r}, not slice {slice_name!r}")
        released = [h for h in host_ids if h in self._owner]
        for host_id in released:
            del self._owner[host_id]
        if released:
            self.version += 1
        return released

    def release_all(self, slice_name: str) -> list[str]:
        """Return every member of ``slice_name``; the host ids released."""
        return self.release(slice_name, [m.host_id for m in self.members_of(slice_name)])

    def members_of(self, slice_name: str) -> list[Member]:
        """Members serving ``slice_name``, sorted by ``host_id``."""
        return [self._members[h] for h, owner in sorted(self._owner.items()) if owner == slice_name]

    def owner_of(self, host_id: str) -> str | None:
        return self._owner.get(host_id)

    def allocations(self) -> dict[str, str]:
        """host_id -> slice name for every allocated member."""
        return dict(sorted(self._owner.items()))

    # --- restore --------------------------------------------------------------------

    @classmethod
    def restore(cls, members: Iterable[Member], allocations: Mapping[str, str]) -> "ResourcePool":
        """Rebuild from stored members and allocations (host_id -> slice name)."""
        pool = cls()
        for m in members:
            if m.host_id in pool._members:
                raise Conflict(f"member {m.host_id!r}", "listed twice")
            pool._members[m.host_id] = m
        pools_of: dict[str, str] = {}
        for host_id, slice_name in sorted(allocations.items()):
            member = pool._members.get(host_id)
            if member is None:
                raise Conflict(f"member {host_id!r}", f"allocated to slice {slice_name!r} but not registered")
            first = pools_of.setdefault(slice_name, member.pool)
            if first != member.pool:
                raise Conflict(f"slice {slice_name!r}",
                               f"holds members of pools {first!r} and {member.pool!r}")
            pool._owner[host_id] = slice_name
        return pool
