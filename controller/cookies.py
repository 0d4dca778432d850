"""Cookie ranges: the top 16 bits of a flow cookie say which manager owns it.

On reconnect, a flow whose cookie belongs to no registered owner is stale and is
removed (the same idea as Neutron's ``br_cookie``). Managers keep the low 48 bits
for their own use (e.g. a slice or stitch id).
"""

from __future__ import annotations

OWNER_SHIFT = 48
OWNER_MASK = 0xFFFF << OWNER_SHIFT
LOW_MASK = (1 << OWNER_SHIFT) - 1

# One entry per manager; later capabilities add theirs here.
OWNERS: dict[str, int] = {
    "pipeline": 0x0F01,
    "forwarding": 0x0F02,
    "flooding": 0x0F03,
}


class CookieError(ValueError):
    """Unknown owner or a low part that does not fit in 48 bits."""


def cookie(owner: str, low: int = 0) -> int:
    try:
        high = OWNERS[owner]
    except KeyError:
        raise CookieError(f"unknown cookie owner {owner!r}; known: {sorted(OWNERS)}") from None
    if not 0 <= low <= LOW_MASK:
        raise CookieError(f"cookie low part {low} does not fit in 48 bits")
    return (high << OWNER_SHIFT) | low


def owner_of(value: int) -> str | None:
    high = (value & OWNER_MASK) >> OWNER_SHIFT
    for name, code in OWNERS.items():
        if code == high:
            return name
    return None
