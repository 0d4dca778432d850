"""Ownership of what the controller puts on switches: flow cookies, group ids, meter ids.

Cookies: the top 16 bits of a 64-bit flow cookie say which manager owns the flow;
the low 48 bits are the owner's own (e.g. a slice or stitch id).

Group and meter ids: the top 8 bits of the 32-bit id say which owner it belongs to;
the low 24 bits are the owner's own. Owner codes run from 0x01 to 0xFE, so an id is
never 0 (an invalid meter id) and never reaches the reserved ids above ``OFPG_MAX``
(0xFFFFFF00) and ``OFPM_MAX`` (0xFFFF0000). Ids 0x00000000-0x00FFFFFF belong to
nobody: that is where other controllers and ``ovs-ofctl`` users tend to put theirs.

On reconnect, a flow, group or meter that belongs to no registered owner is stale
and is removed (the same idea as Neutron's ``br_cookie``).

One owner is the switches themselves: ``learned`` (``LEARNED``) is the cookie range of
flows a switch creates when a packet runs an NX learn action (connection pins, see
``flows.Learn``). Nobody installs them and nobody reconciles them: a (re)connected
switch's dump keeps them out of the installed entries, so they are neither kept nor
deleted as stale, and they live until their idle, hard or fin timeout. A provider's
learn actions must give them a cookie in this range (its low 48 bits are the
provider's, e.g. which slice and member a pin belongs to); no provider may take the
name.
"""

from __future__ import annotations

OWNER_SHIFT = 48
OWNER_MASK = 0xFFFF << OWNER_SHIFT
LOW_MASK = (1 << OWNER_SHIFT) - 1

ID_SHIFT = 24
ID_LOW_MASK = (1 << ID_SHIFT) - 1

# One entry per manager; later capabilities add theirs here.
OWNERS: dict[str, int] = {
    "pipeline": 0x0F01,
    "forwarding": 0x0F02,
    "flooding": 0x0F03,
    "slices": 0x0F04,
    "learned": 0x0F05,
    "te": 0x0F06,
    "qos": 0x0F07,
    "stitching": 0x0F08,
}
LEARNED = "learned"

# Owners that put groups or meters on switches: the top 8 bits of those ids.
ID_OWNERS: dict[str, int] = {
    "pipeline": 0x01,       # the packet-in meter (controller.core.packet_in_meter)
    "forwarding": 0x02,     # fast-failover groups (controller.detours)
    "slices": 0x04,
    "te": 0x06,
    "qos": 0x07,
    "stitching": 0x08,     # bandwidth-stitch meters
}


class CookieError(ValueError):
    """Unknown owner or a low part that does not fit in its bits."""


def cookie(owner: str, low: int = 0) -> int:
    return _pack("cookie", OWNERS, owner, low, OWNER_SHIFT)


def owner_of(value: int) -> str | None:
    return _BY_CODE.get((value & OWNER_MASK) >> OWNER_SHIFT)


def is_learned(value: int) -> bool:
    """A flow a switch created itself from a learn action: never reconciled."""
    return owner_of(value) == LEARNED


def _object_id(kind: str, owner: str, low: int) -> int:
    return _pack(f"{kind} id", ID_OWNERS, owner, low, ID_SHIFT)


def _pack(kind: str, owners: dict[str, int], owner: str, low: int, low_bits: int) -> int:
    """``owner``'s code above ``low_bits`` bits of ``low``; CookieError names what is wrong."""
    try:
        high = owners[owner]
    except KeyError:
        raise CookieError(f"unknown {kind} owner {owner!r}; known: {sorted(owners)}") from None
    if not 0 <= low < 1 << low_bits:
        raise CookieError(f"{kind} low part {low} does not fit in {low_bits} bits")
    return (high << low_bits) | low


def group_id(owner: str, low: int) -> int:
    """The group id ``low`` in ``owner``'s range."""
    return _object_id("group", owner, low)


def meter_id(owner: str, low: int) -> int:
    """The meter id ``low`` in ``owner``'s range."""
    return _object_id("meter", owner, low)


def id_owner(value: int) -> str | None:
    """Owner of a group or meter id, or None if nobody registered its range."""
    high = (value >> ID_SHIFT) & 0xFF
    if value >> 32:
        return None
    for name, code in ID_OWNERS.items():
        if code == high:
            return name
    return None


def _check_codes() -> None:
    if len(set(OWNERS.values())) != len(OWNERS) or len(set(ID_OWNERS.values())) != len(ID_OWNERS):
        raise CookieError("two owners share a code")
    for name, code in ID_OWNERS.items():
        if name not in OWNERS:
            raise CookieError(f"id owner {name!r} has no cookie range")
        if not 0x01 <= code <= 0xFE:
            raise CookieError(f"id owner {name!r}: code {code:#x} outside 0x01..0xfe")


_check_codes()
_BY_CODE = {code: name for name, code in OWNERS.items()}
