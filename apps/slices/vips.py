"""VIP ranges of all slices, and the addresses handed to their members.

Each slice reserves one IPv4 range; ranges of different slices never overlap. In a
range the first usable address is the slice's service VIP (the load-balanced
address clients use); the following addresses are handed to members one at a time.

Reuse rule: addresses never handed out are used first, in ascending order; only
when none is left are reclaimed addresses reused, oldest reclaimed first. A
just-reclaimed address is therefore not handed out again while any other address
is available: clients, ARP caches and flows still pointing at a departed member do
not reach a new one. The allocator keeps the position of the first never-used
address, so this holds across a restart too.

Every VIP has a deterministic virtual MAC, ``virtual_mac(address)``: locally
administered unicast ``02:fe:`` followed by the four address bytes, so the data
plane can answer ARP for it without any table.
"""

from __future__ import annotations

import ipaddress
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from apps.slices.model import Conflict, Exhausted, SliceNotFound, check_vip_cidr, usable_addresses

IPv4 = ipaddress.IPv4Address
_FIRST_MEMBER_OFFSET = 2         # network + 1 is the service VIP


def virtual_mac(address: str | IPv4) -> str:
    """Locally administered unicast MAC for a VIP: ``02:fe:`` + the address bytes."""
    packed = ipaddress.IPv4Address(address).packed
    return "02:fe:" + ":".join(f"{b:02x}" for b in packed)


@dataclass(frozen=True)
class VipRange:
    """State of one slice's range: what a store saves and ``VipAllocator.restore`` takes.

    ``next_offset`` is the offset from the network address of the first address
    never handed out; ``assignments`` maps member ids to addresses; ``reclaimed``
    lists reclaimed addresses oldest first.
    """

    slice_name: str
    cidr: ipaddress.IPv4Network
    next_offset: int = _FIRST_MEMBER_OFFSET
    assignments: tuple[tuple[str, IPv4], ...] = ()
    reclaimed: tuple[IPv4, ...] = ()

    @property
    def service_vip(self) -> IPv4:
        return self.cidr.network_address + 1

    @property
    def last_offset(self) -> int:
        """Offset of the last usable address (the one before broadcast)."""
        return usable_addresses(self.cidr)


class _Range:
    """Mutable working state of one range (see ``VipRange`` for the fields)."""

    def __init__(self, state: VipRange):
        self.slice_name = state.slice_name
        self.cidr = state.cidr
        self.next_offset = state.next_offset
        self.assigned: dict[str, IPv4] = dict(state.assignments)
        self.reclaimed: deque[IPv4] = deque(state.reclaimed)

    def state(self) -> VipRange:
        return VipRange(self.slice_name, self.cidr, self.next_offset,
                        tuple(sorted(self.assigned.items())), tuple(self.reclaimed))

    def check(self) -> None:
        """Refuse restored state that could hand out an address twice."""
        subject = f"vip range {self.cidr} of slice {self.slice_name!r}"
        last = usable_addresses(self.cidr)
        if not _FIRST_MEMBER_OFFSET <= self.next_offset <= last + 1:
            raise Conflict(subject, f"next offset {self.next_offset} outside "
                                    f"{_FIRST_MEMBER_OFFSET}..{last + 1}")
        handed = list(self.assigned.values()) + list(self.reclaimed)
        if len(set(handed)) != len(handed):
            raise Conflict(subject, "an address is both assigned and reclaimed, or assigned twice")
        for address in handed:
            offset = int(address) - int(self.cidr.network_address)
            if not _FIRST_MEMBER_OFFSET <= offset < self.next_offset:
                raise Conflict(subject, f"address {address} was never handed out from this range")


class VipAllocator:
    """VIP ranges of all slices and the member addresses within them."""

    def __init__(self) -> None:
        self._ranges: dict[str, _Range] = {}
        self.version = 0                               # bumped on every change worth saving

    # --- ranges ---------------------------------------------------------------------

    def reserve_range(self, slice_name: str, cidr: str | ipaddress.IPv4Network) -> IPv4:
        """Reserve ``cidr`` for ``slice_name``; return its service VIP.

        Reserving the same range again is a no-op. A range overlapping another
        slice's range, or a second range for the same slice, raises ``Conflict``
        and leaves every existing range as it was.
        """
        net = check_vip_cidr(cidr)
        own = self._ranges.get(slice_name)
        if own is not None:
            if own.cidr == net:
                return net.network_address + 1
            raise Conflict(f"slice {slice_name!r}",
                           f"already holds vip range {own.cidr}; release it before reserving {net}")
        for other in sorted(self._ranges.values(), key=lambda r: r.slice_name):
            if other.cidr.overlaps(net):
                raise Conflict(f"vip range {net} of slice {slice_name!r}",
                               f"overlaps vip range {other.cidr} of slice {other.slice_name!r}")
        self._ranges[slice_name] = _Range(VipRange(slice_name, net))
        self.version += 1
        return net.network_address + 1

    def release_range(self, slice_name: str) -> ipaddress.IPv4Network | None:
        """Drop the slice's range and all its assignments; the range, or None if it had none."""
        rng = self._ranges.pop(slice_name, None)
        if rng is None:
            return None
        self.version += 1
        return rng.cidr

    def range_of(self, slice_name: str) -> ipaddress.IPv4Network:
        return self._range(slice_name).cidr

    def service_vip(self, slice_name: str) -> IPv4:
        return self._range(slice_name).cidr.network_address + 1

    def slices(self) -> list[str]:
        return sorted(self._ranges)

    # --- member addresses -----------------------------------------------------------

    def assign(self, slice_name: str, member_id: str) -> IPv4:
        """The member's address in the slice's range, handing out a new one if it has none.

        Idempotent for a member that already has an address. Raises
        ``SliceNotFound`` if the slice has no range and ``Exhausted`` when every
        member address of the range is assigned.
        """
        rng = self._range(slice_name)
        address = rng.assigned.get(member_id)
        if address is not None:
            return address
        if rng.next_offset <= usable_addresses(rng.cidr):
            address = rng.cidr.network_address + rng.next_offset
            rng.next_offset += 1
        elif rng.reclaimed:
            address = rng.reclaimed.popleft()
        else:
            capacity = usable_addresses(rng.cidr) - 1
            raise Exhausted(f"vip range {rng.cidr} of slice {slice_name!r}",
                            f"no address left for member {member_id!r}: all {capacity} member "
                            f"address(es) are assigned", wanted=1, available=0)
        rng.assigned[member_id] = address
        self.version += 1
        return address

    def reclaim(self, slice_name: str, member_id: str) -> IPv4 | None:
        """Take the member's address back; it is reused last. None if it had none."""
        rng = self._range(slice_name)
        address = rng.assigned.pop(member_id, None)
        if address is not None:
            rng.reclaimed.append(address)
            self.version += 1
        return address

    def address_of(self, slice_name: str, member_id: str) -> IPv4 | None:
        return self._range(slice_name).assigned.get(member_id)

    def assignments(self, slice_name: str) -> dict[str, IPv4]:
        """member id -> address for the slice, sorted by member id."""
        return dict(sorted(self._range(slice_name).assigned.items()))

    def owner_of(self, address: str | IPv4) -> tuple[str, str | None] | None:
        """(slice, member id) an address belongs to; member None for a service VIP."""
        address = ipaddress.IPv4Address(address)
        for rng in self._ranges.values():
            if address in rng.cidr:
                if address == rng.cidr.network_address + 1:
                    return rng.slice_name, None
                for member_id, assigned in rng.assigned.items():
                    if assigned == address:
                        return rng.slice_name, member_id
                return None
        return None

    # --- state ----------------------------------------------------------------------

    def range_state(self, slice_name: str) -> VipRange:
        return self._range(slice_name).state()

    def ranges(self) -> list[VipRange]:
        return [self._ranges[name].state() for name in sorted(self._ranges)]

    @classmethod
    def restore(cls, ranges: Iterable[VipRange]) -> "VipAllocator":
        """Rebuild from stored range states; inconsistent state raises ``Conflict``."""
        alloc = cls()
        for state in sorted(ranges, key=lambda s: s.slice_name):
            alloc.reserve_range(state.slice_name, state.cidr)
            rng = _Range(state)
            rng.check()
            alloc._ranges[state.slice_name] = rng
        alloc.version = 0
        return alloc

    def _range(self, slice_name: str) -> _Range:
        rng = self._ranges.get(slice_name)
        if rng is None:
            raise SliceNotFound(slice_name, "has no vip range")
        return rng
