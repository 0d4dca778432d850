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

import re

OWNER_SHIFT = 48
OWNER_MASK = 0xFFFF << OWNER_SHIFT
LOW_MASK = (1 << OWNER_SHIFT) - 1

ID_SHIFT = 24
ID_LOW_MASK = (1 << ID_SHIFT) - 1

# Owner name -> the top 16 bits of its cookies; owner name -> the top 8 bits of its
# group and meter ids. The controller registers its own owners below; apps register
# theirs when their package is imported (``controller.appbase.register``), so this
# module names no app. A code is part of what switches hold, so an owner keeps its
# code for good: a restarted controller must recognise the flows it installed.
OWNERS: dict[str, int] = {}
ID_OWNERS: dict[str, int] = {}
LEARNED = "learned"
COOKIE_BASE = 0x0F00        # an owner's cookie code is COOKIE_BASE | its code


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
    if value >> 32:
        return None
    name = _BY_CODE.get(COOKIE_BASE | (value >> ID_SHIFT) & 0xFF)
    return name if name in ID_OWNERS else None


NOTES: dict[str, str] = {}     # owner -> what it puts on switches (docs/pipeline.md)


def register_owner(name: str, code: int, ids: bool = False, what: str = "") -> None:
    """Give ``name`` the cookie range ``COOKIE_BASE | code`` and, with ``ids``, the group
    and meter ids whose top 8 bits are ``code``. Registering the same owner again with
    the same code is a no-op; a name or code already taken raises CookieError naming
    the holder."""
    if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
        raise CookieError(f"owner name {name!r}: lower-case letters, digits and _ (at most 32)")
    if not isinstance(code, int) or not 0x01 <= code <= 0xFE:
        raise CookieError(f"owner {name!r}: code {code!r} outside 0x01..0xfe")
    high = COOKIE_BASE | code
    if name in OWNERS:
        if OWNERS[name] == high and (name in ID_OWNERS) == ids:
            return
        raise CookieError(f"owner {name!r} is already registered with code {OWNERS[name] & 0xFF:#04x}")
    holder = _BY_CODE.get(high)
    if holder is not None:
        raise CookieError(f"owner {name!r}: code {code:#04x} is already {holder!r}'s")
    OWNERS[name] = high
    _BY_CODE[high] = name
    if ids:
        ID_OWNERS[name] = code
    if what:
        NOTES[name] = what


def unregister_owner(name: str) -> None:
    """Forget an owner (tests that register one of their own clean up with this)."""
    high = OWNERS.pop(name, None)
    ID_OWNERS.pop(name, None)
    NOTES.pop(name, None)
    if high is not None:
        _BY_CODE.pop(high, None)


_BY_CODE: dict[int, str] = {}

# The controller's own owners: the pipeline's built-in flows and the packet-in meter,
# host-pair forwarding with its fast-failover groups, flooding, and flows switches
# learn themselves (see the module docstring).
register_owner("pipeline", 0x01, ids=True,
               what="built-in flows: LLDP and broadcast ARP to the controller, multicast to flood, every "
                    "table's catch-all; the packet-in meter")
register_owner("forwarding", 0x02, ids=True, what="host-pair paths, their detours and fast-failover groups")
register_owner("flooding", 0x03, what="spanning-tree broadcast")
register_owner(LEARNED, 0x05, what="flows switches learn themselves (connection pins); never reconciled")
