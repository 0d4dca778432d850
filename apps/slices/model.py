"""What a network slice is, the errors of the slices capability, and input validation.

A ``Slice`` is one client's service: a VIP range (``vip_cidr``) whose first usable
address is the load-balanced service VIP, a bandwidth the data plane reserves for it,
a priority class (DSCP marking and flow-priority offset), and the scaling bounds for
the members drawn from a named resource pool. A ``Slice`` is immutable and always
valid: the constructor checks every field, so ``dataclasses.replace`` re-validates.

``slice_from_dict`` is the edge for untrusted input (a gRPC servicer builds a plain
dict from the request): unknown or missing keys and bad values raise ``InvalidSlice``
whose message starts with the field, e.g. ``bandwidth_mbps: must be > 0, got -5``.

All errors of the capability derive from ``SliceError`` and carry a ``subject``
(the field, slice, pool or range concerned); ``str(err)`` is ``"<subject>: <message>"``.
"""

from __future__ import annotations

import enum
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

NAME_MAX_CHARS = 63
CLIENT_MAX_CHARS = 256
VIP_PREFIX_MIN = 16     # at most 65534 usable addresses per slice
VIP_PREFIX_MAX = 30     # at least the service VIP and one member address

_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


# --- errors -------------------------------------------------------------------------

class SliceError(Exception):
    """Base of the slices errors; ``subject`` names the field, slice, pool or range."""

    def __init__(self, subject: str, message: str):
        super().__init__(f"{subject}: {message}")
        self.subject = subject
        self.message = message


class InvalidSlice(SliceError, ValueError):
    """An input value is unusable; ``field`` names it (maps to INVALID_ARGUMENT)."""

    def __init__(self, field: str, message: str):
        super().__init__(field, message)
        self.field = field


class InvalidMember(InvalidSlice):
    """A pool member's description is unusable; ``field`` names the bad member field."""


class SliceNotFound(SliceError, LookupError):
    """No slice of that name is known."""

    def __init__(self, slice_name: str, message: str = "no such slice"):
        super().__init__(f"slice {slice_name!r}", message)
        self.slice_name = slice_name


class MemberNotFound(SliceError, LookupError):
    """No pool member has that host id."""

    def __init__(self, host_id: str, message: str = "no such pool member"):
        super().__init__(f"member {host_id!r}", message)
        self.host_id = host_id


class SliceExists(SliceError):
    """A slice of that name already exists."""

    def __init__(self, slice_name: str, message: str = "already exists"):
        super().__init__(f"slice {slice_name!r}", message)
        self.slice_name = slice_name


class Exhausted(SliceError):
    """A pool or a VIP range has nothing left to hand out.

    ``wanted`` and ``available`` say how short the resource is (counts of members
    or addresses).
    """

    def __init__(self, subject: str, message: str, wanted: int = 0, available: int = 0):
        super().__init__(subject, message)
        self.wanted = wanted
        self.available = available


class Conflict(SliceError):
    """The change contradicts existing state, e.g. overlapping VIP ranges."""


# --- priority classes ---------------------------------------------------------------

class PriorityClass(str, enum.Enum):
    """Service class of a slice: how its packets are marked and how its flows rank.

    ``dscp`` is the DiffServ code point written into the slice's packets (EF, AF41,
    best effort). ``flow_priority_offset`` is added to the base priority of the
    slice's flow entries so that, where matches of two slices overlap, the higher
    class wins; the gaps leave room for per-slice rules within a class.
    """

    GOLD = "gold"
    SILVER = "silver"
    BRONZE = "bronze"

    @property
    def dscp(self) -> int:
        return _DSCP[self]

    @property
    def flow_priority_offset(self) -> int:
        return _FLOW_PRIORITY_OFFSET[self]


_DSCP = {PriorityClass.GOLD: 46, PriorityClass.SILVER: 34, PriorityClass.BRONZE: 0}
_FLOW_PRIORITY_OFFSET = {PriorityClass.GOLD: 200, PriorityClass.SILVER: 100, PriorityClass.BRONZE: 0}


# --- field checks (shared by Slice, the pool and the VIP allocator) ----------------

def check_slug(field: str, value: Any) -> str:
    """A DNS-label-like name: 1..63 of [a-z0-9-], not starting or ending with '-'."""
    if not isinstance(value, str):
        raise InvalidSlice(field, f"must be a string, got {type(value).__name__}")
    if not 1 <= len(value) <= NAME_MAX_CHARS:
        raise InvalidSlice(field, f"must be 1..{NAME_MAX_CHARS} characters, got {len(value)}")
    if not _SLUG.fullmatch(value):
        raise InvalidSlice(field, f"must be lowercase letters, digits and '-', not starting or "
                                  f"ending with '-', got {value!r}")
    return value


def check_text(field: str, value: Any, max_chars: int = CLIENT_MAX_CHARS) -> str:
    """A non-empty string without surrounding whitespace."""
    if not isinstance(value, str):
        raise InvalidSlice(field, f"must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidSlice(field, "must not be empty")
    if value != value.strip():
        raise InvalidSlice(field, f"must not start or end with whitespace, got {value!r}")
    if len(value) > max_chars:
        raise InvalidSlice(field, f"must be at most {max_chars} characters, got {len(value)}")
    return value


def check_number(field: str, value: Any, *, gt: float | None = None, ge: float | None = None,
                 lt: float | None = None) -> float:
    """A finite real number within the given bounds (bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidSlice(field, f"must be a number, got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidSlice(field, f"must be finite, got {value}")
    if gt is not None and not value > gt:
        raise InvalidSlice(field, f"must be > {gt:g}, got {value:g}")
    if ge is not None and not value >= ge:
        raise InvalidSlice(field, f"must be >= {ge:g}, got {value:g}")
    if lt is not None and not value < lt:
        raise InvalidSlice(field, f"must be < {lt:g}, got {value:g}")
    return value


def check_count(field: str, value: Any, *, ge: int) -> int:
    """An integer >= ``ge`` (bool and floats are refused, even 2.0)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSlice(field, f"must be an integer, got {type(value).__name__} {value!r}")
    if value < ge:
        raise InvalidSlice(field, f"must be >= {ge}, got {value}")
    return value


def check_vip_cidr(value: Any, field: str = "vip_cidr") -> ipaddress.IPv4Network:
    """An IPv4 network without host bits, prefix 16..30, usable for unicast services."""
    if isinstance(value, ipaddress.IPv4Network):
        net = value
    elif isinstance(value, str):
        try:
            net = ipaddress.ip_network(value, strict=True)
        except ValueError as err:
            raise InvalidSlice(field, f"not an IPv4 network: {err}") from None
        if not isinstance(net, ipaddress.IPv4Network):
            raise InvalidSlice(field, f"must be an IPv4 network, got {value!r}")
    else:
        raise InvalidSlice(field, f"must be a string like '10.20.0.0/24', got {type(value).__name__}")
    if not VIP_PREFIX_MIN <= net.prefixlen <= VIP_PREFIX_MAX:
        raise InvalidSlice(field, f"prefix length must be {VIP_PREFIX_MIN}..{VIP_PREFIX_MAX}, "
                                  f"got /{net.prefixlen} in {net}")
    if net.is_multicast or net.is_loopback or net.is_link_local or net.is_reserved or net.is_unspecified:
        raise InvalidSlice(field, f"{net} is not a unicast range usable for services")
    return net


def check_ipv4(field: str, value: Any) -> ipaddress.IPv4Address:
    if isinstance(value, ipaddress.IPv4Address):
        return value
    if not isinstance(value, str):
        raise InvalidSlice(field, f"must be an IPv4 address string, got {type(value).__name__}")
    try:
        return ipaddress.IPv4Address(value)
    except ValueError:
        raise InvalidSlice(field, f"not an IPv4 address: {value!r}") from None


def usable_addresses(net: ipaddress.IPv4Network) -> int:
    """Addresses of ``net`` without the network and broadcast addresses."""
    return net.num_addresses - 2


# --- the slice ----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class Slice:
    """One client's service, validated on construction (see the module docstring)."""

    name: str                                   # slug, unique among slices
    client: str                                 # who the slice is for (free text)
    vip_cidr: ipaddress.IPv4Network             # first usable address = service VIP
    bandwidth_mbps: float                       # rate the data plane reserves for the slice
    per_member_mbps: float                      # load one member serves within its SLA
    pool: str                                   # resource pool the members come from
    max_members: int
    min_members: int = 1
    priority: PriorityClass = PriorityClass.BRONZE
    sla_quantile: float = 0.9                   # demand quantile the slice is sized for
    dissolve_after_s: float = 0.0               # zero demand this long -> dissolve; 0 = never

    def __post_init__(self) -> None:
        # Coerce loose input (strings, ints) to the declared types, then check bounds.
        # Fields are checked in declaration order so the first bad one is reported.
        set_ = object.__setattr__
        set_(self, "name", check_slug("name", self.name))
        set_(self, "client", check_text("client", self.client))
        set_(self, "vip_cidr", check_vip_cidr(self.vip_cidr))
        set_(self, "bandwidth_mbps", check_number("bandwidth_mbps", self.bandwidth_mbps, gt=0))
        set_(self, "per_member_mbps", check_number("per_member_mbps", self.per_member_mbps, gt=0))
        set_(self, "pool", check_text("pool", self.pool, max_chars=NAME_MAX_CHARS))
        set_(self, "max_members", check_count("max_members", self.max_members, ge=1))
        set_(self, "min_members", check_count("min_members", self.min_members, ge=1))
        set_(self, "priority", _check_priority(self.priority))
        set_(self, "sla_quantile", check_number("sla_quantile", self.sla_quantile, gt=0, lt=1))
        set_(self, "dissolve_after_s", check_number("dissolve_after_s", self.dissolve_after_s, ge=0))
        if self.max_members < self.min_members:
            raise InvalidSlice("max_members", f"must be >= min_members ({self.min_members}), "
                                              f"got {self.max_members}")
        member_addresses = usable_addresses(self.vip_cidr) - 1      # one is the service VIP
        if self.max_members > member_addresses:
            raise InvalidSlice("max_members", f"{self.vip_cidr} has room for {member_addresses} member "
                                              f"address(es) besides the service VIP, got {self.max_members}")

    @property
    def service_vip(self) -> ipaddress.IPv4Address:
        """The load-balanced address clients use: the first usable address of the range."""
        return self.vip_cidr.network_address + 1

    def capacity_mbps(self, members: int) -> float:
        """Load ``members`` members serve within the SLA."""
        return members * self.per_member_mbps

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-friendly form; ``slice_from_dict(s.to_dict()) == s``."""
        data = asdict(self)
        data["vip_cidr"] = str(self.vip_cidr)
        data["priority"] = self.priority.value
        return data


def _check_priority(value: Any) -> PriorityClass:
    if isinstance(value, PriorityClass):
        return value
    names = ", ".join(p.value for p in PriorityClass)
    if not isinstance(value, str):
        raise InvalidSlice("priority", f"must be one of {names}, got {type(value).__name__}")
    try:
        return PriorityClass(value)
    except ValueError:
        raise InvalidSlice("priority", f"must be one of {names}, got {value!r}") from None


SLICE_FIELDS = tuple(f.name for f in fields(Slice))
REQUIRED_FIELDS = ("name", "client", "vip_cidr", "bandwidth_mbps", "per_member_mbps", "pool", "max_members")


def slice_from_dict(data: Mapping[str, Any]) -> Slice:
    """Validate a plain mapping into a ``Slice``; raise ``InvalidSlice`` naming the field.

    Unknown keys are refused (a typo must not silently fall back to a default);
    missing required keys are named one at a time in declaration order.
    """
    if not isinstance(data, Mapping):
        raise InvalidSlice("slice", f"must be a mapping, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in SLICE_FIELDS)
    if unknown:
        raise InvalidSlice(unknown[0], "unknown field")
    for name in REQUIRED_FIELDS:
        if name not in data:
            raise InvalidSlice(name, "required")
    return Slice(**data)
