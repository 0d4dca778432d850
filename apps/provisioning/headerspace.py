"""Header space for the verifier: per-field atoms (Delta-net's intervals) and cubes over them.

Each modelled header field has a value space ``0 .. 2**bits - 1`` cut into *atoms*:
elementary intervals between the boundaries of the values, prefixes and masks in use
(Delta-net, NSDI 2017). A match or set-field value registers its interval's two ends;
a new boundary splits one atom in two and nothing else changes. Atoms have stable ids,
so a set of atoms is an ``int`` bit mask; the atom that was split keeps its id and the
new one gets a fresh id, so a mask made before the split is fixed by copying the old
atom's bit to the new one (``fix``). Boundaries are reference counted, but atoms are
never merged when a count drops to zero (as in Delta-net): an unused boundary costs a
little memory and no wrong answer.

Masks are intervals only when the mask is a prefix, so each field reads its bits in an
order that makes the masks our flows use prefixes: MAC addresses put the
group (multicast) bit first, so ``01:00:00:00:00:00/01:00:00:00:00:00`` is a prefix;
TCP and UDP ports are read least significant bit first, so traffic engineering's slot
blocks (``tcp_src`` under mask ``0x3f``) are prefixes. Any other mask is refused with
``VerifyError`` naming the field: it is not modelled, rather than modelled wrongly.

A *cube* is a tuple with one atom mask per field (``FIELDS`` order): the packets whose
every field lies in its mask. A predicate (a flow's match) is sparse: ``((field
index, mask), ...)`` for the fields it names. Cube difference splits along the
predicate's fields, so ``a - p`` is at most one cube per field ``p`` names.

``in_port`` and the registers are not header fields here: along a walk they always
have one concrete value (the port a frame came in on; zero on entry, then what
set_field wrote), so the walk carries them as state and matches them directly.
"""

from __future__ import annotations

import bisect
import ipaddress
from dataclasses import dataclass
from typing import Any

from controller.fields import IPV4_FIELDS, MAC_FIELDS


class VerifyError(ValueError):
    """The verifier was given something it cannot take: it names what and why."""


def _mac_key(value: int) -> int:
    """A MAC address with its group bit (bit 40) moved to the top."""
    return (((value >> 40) & 1) << 47) | ((value >> 41) << 40) | (value & ((1 << 40) - 1))


def _mac_value(key: int) -> int:
    return (((key >> 47) & 1) << 40) | (((key >> 40) & 0x7F) << 41) | (key & ((1 << 40) - 1))


def _reversed16(value: int) -> int:
    return int(f"{value:016b}"[::-1], 2)


@dataclass(frozen=True)
class FieldDef:
    name: str
    bits: int
    order: str = "msb"          # 'msb' | 'mac' (group bit first) | 'lsb' (least significant first)

    def key(self, value: int) -> int:
        if self.order == "mac":
            return _mac_key(value)
        if self.order == "lsb":
            return _reversed16(value)
        return value

    def value(self, key: int) -> int:
        if self.order == "mac":
            return _mac_value(key)
        if self.order == "lsb":
            return _reversed16(key)
        return key


FIELDS: tuple[FieldDef, ...] = (
    FieldDef("eth_dst", 48, "mac"), FieldDef("eth_src", 48, "mac"), FieldDef("eth_type", 16),
    FieldDef("vlan_vid", 13), FieldDef("ip_proto", 8), FieldDef("ipv4_dst", 32), FieldDef("ipv4_src", 32),
    FieldDef("ip_dscp", 6), FieldDef("tcp_src", 16, "lsb"), FieldDef("tcp_dst", 16, "lsb"),
    FieldDef("udp_src", 16, "lsb"), FieldDef("udp_dst", 16, "lsb"), FieldDef("arp_tpa", 32),
    FieldDef("arp_spa", 32), FieldDef("tunnel_id", 64), FieldDef("tun_ipv4_src", 32),
    FieldDef("tun_ipv4_dst", 32),
)
INDEX = {f.name: i for i, f in enumerate(FIELDS)}
ETH_DST = INDEX["eth_dst"]

Cube = tuple[int, ...]
Pred = tuple[tuple[int, int], ...]
Interval = tuple[int, int, int]         # (field index, low key, high key)


def bits_of(name: str, value: Any) -> tuple[int, int]:
    """A normalised match or set-field value as (value, mask) integers."""
    if isinstance(value, tuple):
        (v, _), (m, _) = bits_of(name, value[0]), bits_of(name, value[1])
        return v & m, m
    if isinstance(value, str) and name in MAC_FIELDS:
        return int(value.replace(":", ""), 16), (1 << 48) - 1
    if isinstance(value, str) and name in IPV4_FIELDS:
        return int(ipaddress.IPv4Address(value)), (1 << 32) - 1
    if type(value) is not int:
        raise VerifyError(f"{name}={value!r}: not a value of that field")
    return value, -1


class FieldAtoms:
    """One field's atoms: sorted interval starts (in key order), their ids, boundary counts."""

    def __init__(self, spec: FieldDef):
        self.spec = spec
        self.top = (1 << spec.bits) - 1
        self.starts = [0]
        self.ids = [0]
        self.start_of = {0: 0}
        self.refs: dict[int, int] = {}
        self.all = 1
        self._masks: dict[tuple[int, int], int] = {}

    def interval(self, value: int, mask: int) -> tuple[int, int]:
        """The key interval of ``value`` under ``mask``; VerifyError if it is not one."""
        name = self.spec.name
        if mask == -1:
            mask = self.top
        if not 0 <= value <= self.top or not 0 <= mask <= self.top:
            raise VerifyError(f"{name}: value {value:#x}/{mask:#x} does not fit in {self.spec.bits} bits")
        kmask = self.spec.key(mask)
        low_zeros = (kmask ^ self.top) + 1
        if low_zeros & (low_zeros - 1):
            raise VerifyError(f"{name}: mask {mask:#x} is not modelled (only masks that are a prefix in "
                              f"{self.spec.order} bit order)")
        lo = self.spec.key(value & mask) & kmask
        return lo, lo | (self.top & ~kmask)

    def boundary(self, key: int) -> tuple[int, int] | None:
        """Count a boundary at ``key``; the (old, new) atom ids if it split an atom."""
        if key <= 0 or key > self.top:
            return None
        count = self.refs.get(key, 0)
        self.refs[key] = count + 1
        pos = bisect.bisect_right(self.starts, key) - 1
        if self.starts[pos] == key:
            return None
        old, new = self.ids[pos], len(self.start_of)
        self.starts.insert(pos + 1, key)
        self.ids.insert(pos + 1, new)
        self.start_of[new] = key
        self.all |= 1 << new
        self._masks.clear()
        return old, new

    def release(self, key: int) -> None:
        if 0 < key <= self.top:
            self.refs[key] -= 1

    def mask(self, lo: int, hi: int) -> int:
        cached = self._masks.get((lo, hi))
        if cached is not None:
            return cached
        p0 = bisect.bisect_right(self.starts, lo) - 1
        p1 = bisect.bisect_right(self.starts, hi) - 1
        out = 0
        for pos in range(p0, p1 + 1):
            out |= 1 << self.ids[pos]
        self._masks[(lo, hi)] = out
        return out

    def example(self, mask: int) -> int:
        """A value in the atoms of ``mask``: the start of its lowest-id atom."""
        atom = (mask & -mask).bit_length() - 1
        return self.spec.value(self.start_of[atom])


class HeaderSpace:
    """Every field's atoms; cube and predicate operations."""

    def __init__(self):
        self.fields = [FieldAtoms(f) for f in FIELDS]
        self._intervals: dict[tuple[str, Any], Interval] = {}

    def interval(self, name: str, value: Any) -> Interval:
        """The key interval of a match or set-field value (parsed once per value: walks ask
        for the same set-field values again and again)."""
        try:
            return self._intervals[(name, value)]
        except KeyError:
            pass
        except TypeError:           # an unhashable value: parsed (and refused) below
            return self._interval(name, value)
        got = self._interval(name, value)
        if len(self._intervals) >= 100_000:     # values come and go with flows: keep the memo bounded
            self._intervals.clear()
        self._intervals[(name, value)] = got
        return got

    def _interval(self, name: str, value: Any) -> Interval:
        i = INDEX.get(name)
        if i is None:
            raise VerifyError(f"match field {name!r} is not modelled (modelled: {sorted(INDEX)}, "
                              f"in_port and registers)")
        try:
            v, m = bits_of(name, value)
        except (ValueError, TypeError):
            raise VerifyError(f"{name}={value!r}: not a value of that field") from None
        lo, hi = self.fields[i].interval(v, m)
        return i, lo, hi

    def add(self, intervals: list[Interval]) -> list[tuple[int, int, int]]:
        """Count the boundaries of ``intervals``; the atom splits (field, old, new) they made."""
        splits = []
        for i, lo, hi in intervals:
            atoms = self.fields[i]
            for key in (lo, hi + 1):
                split = atoms.boundary(key)
                if split is not None:
                    splits.append((i, *split))
        return splits

    def remove(self, intervals: list[Interval]) -> None:
        for i, lo, hi in intervals:
            self.fields[i].release(lo)
            self.fields[i].release(hi + 1)

    def pred(self, intervals: list[Interval]) -> Pred:
        return tuple((i, self.fields[i].mask(lo, hi)) for i, lo, hi in intervals)

    def full(self) -> Cube:
        return tuple(f.all for f in self.fields)

    def example(self, cube: Cube) -> dict[str, Any]:
        """Concrete field values of one packet in ``cube``, as a frame would carry them."""
        raw = {FIELDS[i].name: self.fields[i].example(m) for i, m in enumerate(cube)}
        out: dict[str, Any] = {"eth_src": raw["eth_src"], "eth_dst": raw["eth_dst"],
                               "eth_type": raw["eth_type"]}
        if raw["vlan_vid"]:
            out["vlan_vid"] = raw["vlan_vid"]
        if raw["eth_type"] == 0x0800:
            out.update({k: raw[k] for k in ("ipv4_src", "ipv4_dst", "ip_proto", "ip_dscp")})
            proto = {6: "tcp", 17: "udp"}.get(raw["ip_proto"])
            if proto:
                out.update({k: raw[k] for k in (f"{proto}_src", f"{proto}_dst")})
        elif raw["eth_type"] == 0x0806:
            out.update({k: raw[k] for k in ("arp_spa", "arp_tpa")})
        for name in ("tunnel_id", "tun_ipv4_src", "tun_ipv4_dst"):
            if cube[INDEX[name]] != self.fields[INDEX[name]].all:
                out[name] = raw[name]
        return {k: _spell(k, v) for k, v in out.items()}


def _spell(name: str, value: int) -> Any:
    if name in MAC_FIELDS:
        return ":".join(f"{b:02x}" for b in value.to_bytes(6, "big"))
    if name in IPV4_FIELDS:
        return str(ipaddress.IPv4Address(value))
    return value


# ---- cube operations --------------------------------------------------------------------------

def meet(cube: Cube, pred: Pred) -> Cube | None:
    """``cube`` restricted to ``pred``; None if nothing is left."""
    out = list(cube)
    for i, m in pred:
        v = out[i] & m
        if not v:
            return None
        out[i] = v
    return tuple(out)


def within(cube: Cube, pred: Pred) -> bool:
    return all(not cube[i] & ~m for i, m in pred)


def minus(cube: Cube, pred: Pred) -> list[Cube]:
    """``cube`` less ``pred``, as disjoint cubes (one per field of ``pred`` at most)."""
    out = []
    rest = list(cube)
    for i, m in pred:
        outside = rest[i] & ~m
        if outside:
            piece = list(rest)
            piece[i] = outside
            out.append(tuple(piece))
        rest[i] &= m
        if not rest[i]:
            break
    return out


def fix(cube: Cube, splits: list[tuple[int, int, int]]) -> Cube:
    """A cube made before ``splits``: each new atom is in it where the atom it split off was."""
    out = list(cube)
    for i, old, new in splits:
        if out[i] >> old & 1:
            out[i] |= 1 << new
    return tuple(out)
