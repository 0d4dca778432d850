"""Match and set-field values as the controller spells them: the fields it knows,
their normal form (MACs lower case, IPv4 exact or (network, mask) with host bits
cleared), OpenFlow 1.3's prerequisites, and the errors for what does not fit.
``controller.flows`` (flows and actions) and ``controller.learn`` (NX learn) build on it.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Iterable

from controller.pipeline import PipelineError

MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src", "tun_ipv4_dst"})
# Open vSwitch registers we set and match (32 bits each): reg6 carries the member a
# select bucket picked, reg5 the virtual network a site's host port belongs to, reg4
# the exit a fast-failover bucket picked (see controller.pipeline).
REG_FIELDS = frozenset({"reg4", "reg5", "reg6"})
# A flow-based tunnel port takes its key and endpoints from these (Open vSwitch's
# tun_ipv4_src/dst are Nicira extensions; tunnel_id is OpenFlow 1.3's).
TUNNEL_FIELDS = frozenset({"tunnel_id", "tun_ipv4_src", "tun_ipv4_dst"})
# What set_field may rewrite (address rewriting for VIPs, DSCP marking, the member register,
# the VLAN id a fast-failover detour tags frames with, a stitch's tunnel).
SET_FIELDS = frozenset({"eth_src", "eth_dst", "ipv4_src", "ipv4_dst", "ip_dscp", "vlan_vid"}) | REG_FIELDS \
    | TUNNEL_FIELDS
# OpenFlow 1.3 writes vlan_vid with this bit set when a tag is present (in matches and
# in set_field, where Open vSwitch refuses a value without it).
OFPVID_PRESENT = 0x1000
VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8})
ETH_TYPE_IP = 0x0800
ETH_TYPE_ARP = 0x0806
IP_PROTO_TCP = 6
IP_PROTO_UDP = 17
# OpenFlow 1.3 prerequisites (switches refuse a flow that matches or rewrites a
# field without them): field -> (field it needs, value it must have).
PREREQUISITES = {
    "ipv4_src": ("eth_type", ETH_TYPE_IP), "ipv4_dst": ("eth_type", ETH_TYPE_IP),
    "ip_proto": ("eth_type", ETH_TYPE_IP), "ip_dscp": ("eth_type", ETH_TYPE_IP),
    "arp_spa": ("eth_type", ETH_TYPE_ARP), "arp_tpa": ("eth_type", ETH_TYPE_ARP),
    "tcp_src": ("ip_proto", IP_PROTO_TCP), "tcp_dst": ("ip_proto", IP_PROTO_TCP),
    "udp_src": ("ip_proto", IP_PROTO_UDP), "udp_dst": ("ip_proto", IP_PROTO_UDP),
}
_FULL_MASK = "255.255.255.255"


def norm_ipv4(field: str, value: Any) -> Any:
    """Exact "a.b.c.d", or (network, mask) with host bits cleared; a /32 is exact."""
    try:
        if isinstance(value, tuple):
            net = ipaddress.IPv4Network(f"{value[0]}/{value[1]}", strict=False)
        elif isinstance(value, str) and "/" in value:
            net = ipaddress.IPv4Network(value, strict=False)
        else:
            return str(ipaddress.IPv4Address(value))
    except (ValueError, IndexError, TypeError):
        raise PipelineError(f"{field}: not an IPv4 address or network: {value!r}") from None
    if str(net.netmask) == _FULL_MASK:
        return str(net.network_address)
    return (str(net.network_address), str(net.netmask))


def norm_value(field: str, value: Any) -> Any:
    if field in IPV4_FIELDS:
        return norm_ipv4(field, value)
    if isinstance(value, (list, tuple)):
        return tuple(norm_value(field, v) for v in value)
    if field in MAC_FIELDS and isinstance(value, str):
        return value.lower()
    return value


def norm_match(match: dict[str, Any] | Iterable[tuple[str, Any]]) -> tuple[tuple[str, Any], ...]:
    items = match.items() if isinstance(match, dict) else match
    return tuple(sorted((k, norm_value(k, v)) for k, v in items))


def check_mac(where: str, value: Any) -> str:
    parts = value.split(":") if isinstance(value, str) else []
    if len(parts) != 6 or not all(len(p) == 2 and all(c in "0123456789abcdefABCDEF" for c in p)
                                  for p in parts):
        raise PipelineError(f"{where}: not a MAC address: {value!r}")
    return value.lower()


def one_ipv4(where: str, field: str, value: Any) -> str:
    if isinstance(value, tuple) or (isinstance(value, str) and "/" in value):
        raise PipelineError(f"{where}: needs one address, got {value!r}")
    return norm_ipv4(field, value)


def is_uint(value: Any, bits: int) -> bool:
    return type(value) is int and 0 <= value < 1 << bits


def norm_set_field(field: str, value: Any) -> Any:
    if field not in SET_FIELDS:
        raise PipelineError(f"set_field {field!r} not supported (allowed: {sorted(SET_FIELDS)})")
    if field in MAC_FIELDS:
        return check_mac(f"set_field {field}", value)
    if field in IPV4_FIELDS:
        return one_ipv4(f"set_field {field}", field, value)
    if field == "tunnel_id":
        if not is_uint(value, 64):
            raise PipelineError(f"set_field tunnel_id: {value!r} is not a 64-bit tunnel key")
        return value
    if field in REG_FIELDS:
        if not is_uint(value, 32):
            raise PipelineError(f"set_field {field}: {value!r} is not a 32-bit register value")
        return value
    if field == "vlan_vid":
        if not is_uint(value, 13) or not value & OFPVID_PRESENT or value & 0xFFF in (0, 0xFFF):
            raise PipelineError(f"set_field vlan_vid: {value!r} is not OFPVID_PRESENT | a VLAN id 1..4094")
        return value
    if not is_uint(value, 6):
        raise PipelineError(f"set_field ip_dscp: {value!r} is not a DSCP value 0..63")
    return value


def missing_prerequisite(field: str, have: dict[str, Any]) -> tuple[str, int] | None:
    """The first (field, value) in ``field``'s prerequisite chain that ``have`` lacks."""
    while field in PREREQUISITES:
        need, value = PREREQUISITES[field]
        if have.get(need) != value:
            return need, value
        field = need
    return None


class ForeignFlow(Exception):
    """A dumped flow uses something our specs never produce (unknown table, action)."""
