"""The ``peering`` config section (``apps.peering.app:provider`` in controller.providers).

Times the planner reasons in (horizons, dwell, lead, billing window) are app-clock
seconds (``controller.clock``: a lab replaying 5-minute data faster than real time
scales them); ``interval_s`` is real seconds between plan steps. Costs are in one
currency of the operator's choice.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from controller.config import Section, key_error

# ASNs a neighbour or our AS may not use (RFC 7607 0, RFC 6793 AS_TRANS, RFC 7300 last ones).
RESERVED_ASNS = {
    0: "AS 0 is reserved (RFC 7607)",
    23456: "AS 23456 is AS_TRANS (RFC 6793)",
    65535: "AS 65535 is reserved (RFC 7300)",
    4294967295: "AS 4294967295 is reserved (RFC 7300)",
}
SCHEMES = ("predictive", "reactive", "plain_bgp")
PRIORITIES = ("gold", "silver", "bronze")
_NAME = r"^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$"
_MAC = r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$"


def check_asn(value: int) -> int:
    if not 0 <= value <= 4294967295:
        raise ValueError(f"ASN {value} is outside 1..4294967294")
    if value in RESERVED_ASNS:
        raise ValueError(RESERVED_ASNS[value])
    return value


def check_ipv4(value: str) -> str:
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        raise ValueError(f"not an IPv4 address: {value!r}") from None
    if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
        raise ValueError(f"{value} is not a unicast address")
    return str(address)


class NeighbourConfig(Section):
    """One network we can exchange traffic with: the transit provider, or a peer."""

    name: str = Field(pattern=_NAME)
    asn: int
    address: str  # its BGP address (next hop)
    kind: Literal["transit", "peer"] = "peer"
    capacity_mbps: float = Field(gt=0)  # the interconnect's rate
    cost_per_mbps: float = Field(default=0.0, ge=0)  # per Mbit/s of its 95th percentile, per billing window
    hour_cost: float = Field(default=0.0, ge=0)  # per hour while the session is up
    latency_ms: float = Field(default=0.0, ge=0)
    lead_s: float = Field(default=300.0, ge=0)  # request to traffic (app clock): plan this far ahead
    provision_s: float = Field(default=0.0, ge=0)  # request to session configured (the peer's side)
    max_prefixes: int = Field(default=100000, ge=1)  # more than this and the session is torn down
    always: bool = False  # kept up whatever the plan (transit is)
    priority: Literal["gold", "silver", "bronze"] = "silver"  # its slice's priority class
    max_latency_ms: float = Field(default=0.0, ge=0)  # the SLA a request asks for (0: none)
    # Origin ASes it registers (its IRR as-set or PeeringDB entry): what it should
    # announce. Before any session has shown its real routes, candidates are judged on this.
    registered_origins: tuple[int, ...] = ()

    @field_validator("registered_origins")
    @classmethod
    def _origins(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        for asn in value:
            check_asn(asn)
        return tuple(sorted(set(value)))

    @field_validator("asn")
    @classmethod
    def _asn(cls, value: int) -> int:
        return check_asn(value)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        return check_ipv4(value)


class GoBgpConfig(Section):
    """Where the BGP speaker's gRPC API is. GoBGP's API has no authentication: keep it
    on loopback, or behind a unix socket only root can reach."""

    target: str = "127.0.0.1:50051"  # "host:port" or "unix:/path"
    timeout_s: float = Field(default=5.0, gt=0, le=60)
    listen_port: int = Field(default=-1, ge=-1, le=65535)  # -1: connect out only
    # Wait for the neighbours to connect (with listen_port set): GoBGP dials out only every
    # 5-10 s, and its own dial racing the neighbour's reset sessions (collisions).
    passive: bool = False
    hold_s: int = Field(default=9, ge=3, le=65535)
    keepalive_s: int = Field(default=3, ge=1, le=21845)
    connect_retry_s: int = Field(default=1, ge=1, le=3600)

    @model_validator(mode="after")
    def _timers(self) -> "GoBgpConfig":
        if self.passive and self.listen_port <= 0:
            raise key_error(("passive",), "a passive speaker needs a listen_port for the neighbours to reach")
        if self.keepalive_s * 3 > self.hold_s:
            raise key_error(
                ("keepalive_s",),
                f"keepalive {self.keepalive_s} s must be at most a third of hold {self.hold_s} s (RFC 4271)",
            )
        return self


class PeeringConfig(Section):
    """Proactive peering (``apps.peering.app:provider`` in controller.providers)."""

    asn: int = 65000
    router_id: str = "10.100.0.1"
    gobgp: GoBgpConfig = GoBgpConfig()
    edge_switch: str = ""  # name (config topology) or dp_id (decimal or 0x..) of the border switch
    gateway_ip: str = "10.0.0.254"  # our hosts' next hop for outside destinations
    router_mac: str = Field(default="02:fe:00:00:00:01", pattern=_MAC)
    neighbours: tuple[NeighbourConfig, ...] = ()
    scheme: Literal["predictive", "reactive", "plain_bgp"] = "predictive"
    interval_s: float = Field(default=10.0, gt=0, le=3600)  # real seconds between plan steps
    step_s: float = Field(default=300.0, gt=0)  # app-clock seconds one step stands for
    horizons_s: tuple[float, ...] = (300.0, 900.0, 3600.0)  # forecast horizons (app clock)
    quantile: float = Field(default=0.9, gt=0.5, lt=1)  # the upper quantile planned on
    headroom: float = Field(default=0.85, gt=0, le=1)  # plan exits to this share of capacity
    detour: float = Field(default=0.80, gt=0, le=1)  # reactive: move traffic off above this
    restore: float = Field(default=0.65, gt=0, le=1)  # reactive: bring it back below this
    min_dwell_s: float = Field(default=1800.0, ge=0)  # app clock: no move back sooner
    fit_ahead_s: float | None = Field(default=None, gt=0)  # app clock: the plan must fit so far (None: all)
    hysteresis: float = Field(default=0.2, ge=0, lt=1)
    billing_window_s: float = Field(default=30 * 86400.0, gt=0)
    slices: bool = True  # a slice (meter, priority) per peering
    slice_margin: float = Field(default=0.25, ge=0, le=4)  # slice rate = planned q x (1 + margin)
    store_path: str = ""  # sessions, plan, overrides ("" none)
    decisions_path: str = ""  # JSON lines of every decision ("" none)

    @field_validator("asn")
    @classmethod
    def _asn(cls, value: int) -> int:
        return check_asn(value)

    @field_validator("router_id", "gateway_ip")
    @classmethod
    def _ipv4(cls, value: str) -> str:
        return check_ipv4(value)

    @field_validator("horizons_s")
    @classmethod
    def _horizons(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(not h > 0 for h in value):
            raise ValueError("give at least one horizon, each > 0")
        return tuple(sorted(set(value)))

    @model_validator(mode="after")
    def _consistent(self) -> "PeeringConfig":
        if self.restore >= self.detour:
            raise key_error(("restore",), f"restore {self.restore} must be below detour {self.detour}")
        names: dict[str, int] = {}
        addresses: dict[str, int] = {}
        for i, n in enumerate(self.neighbours):
            if n.name in names:
                raise key_error(
                    ("neighbours", i, "name"),
                    f"duplicate neighbour {n.name!r} (also neighbours.{names[n.name]})",
                )
            if n.address in addresses:
                raise key_error(
                    ("neighbours", i, "address"),
                    f"{n.address} is also neighbours.{addresses[n.address]}'s address",
                )
            if n.asn == self.asn:
                raise key_error(("neighbours", i, "asn"), f"AS {n.asn} is our own AS: neighbours are eBGP")
            if n.address in (self.router_id, self.gateway_ip):
                raise key_error(
                    ("neighbours", i, "address"), f"{n.address} is our own router_id or gateway_ip"
                )
            names[n.name] = i
            addresses[n.address] = i
        if self.neighbours and not any(n.kind == "transit" for n in self.neighbours):
            raise key_error(
                ("neighbours",), "no neighbour is of kind 'transit': something must reach every destination"
            )
        return self

    def neighbour(self, name: str) -> NeighbourConfig | None:
        return next((n for n in self.neighbours if n.name == name), None)
