"""The ``stitching`` config section (``apps.stitching.app:provider`` in controller.providers)."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

import ipaddress
from typing import Literal

from controller.config import Section


STITCH_KINDS = ("direct", "segment", "bandwidth")


class StitchRuleConfig(Section):
    """One security-policy rule for stitches. Rules are read in order and the first
    one that matches the tenant and the pair of virtual networks (either way round)
    decides; a stitch no rule matches is refused (deny by default)."""

    name: str = Field(min_length=1, max_length=64)
    action: Literal["allow", "deny"] = "allow"
    tenant: str = Field(min_length=1, max_length=64)            # "*": any tenant
    between: tuple[int | Literal["*"], int | Literal["*"]]       # VNIDs (or "*")
    kinds: tuple[Literal["direct", "segment", "bandwidth"], ...] = STITCH_KINDS
    encrypt: bool = False                                        # stitched traffic must be encrypted
    max_mbps: float | None = Field(default=None, gt=0)           # cap for bandwidth stitches

    @field_validator("between")
    @classmethod
    def _vnids(cls, value):
        for v in value:
            if v != "*" and not 0 < v < 2**24:
                raise ValueError(f"VNID {v} is outside 1..16777215")
        return value


class PredictedStitchConfig(Section):
    """A stitch made ahead of predicted traffic: when the forecast of the series
    ``vnpair:<tenant>:<a_vnid>-<b_vnid>`` (fed by whoever knows that demand, e.g. an
    orchestrator, through the predictor's Ingest) reaches ``open_mbps`` within the
    horizon, the stitch is created (the policy still decides)."""

    tenant: str = Field(min_length=1, max_length=64)
    between: tuple[int, int]
    kind: Literal["segment", "bandwidth"] = "segment"
    mbps: float = Field(default=0.0, ge=0)                       # bandwidth stitches: the rate
    open_mbps: float = Field(gt=0)

    @field_validator("between")
    @classmethod
    def _vnids(cls, value):
        for v in value:
            if not 0 < v < 2**24:
                raise ValueError(f"VNID {v} is outside 1..16777215")
        return value

    @model_validator(mode="after")
    def _rate(self) -> "PredictedStitchConfig":
        if (self.kind == "bandwidth") != (self.mbps > 0):
            raise ValueError("mbps: a bandwidth stitch needs the rate to reserve, and only it has one")
        return self


class StitchingConfig(Section):
    """Virtual-network stitching across sites (``apps.stitching.app:provider``)."""

    store_path: str = "/var/lib/foresight/stitching.sqlite"      # "" keeps stitches in memory only
    vni_base: int = Field(default=10000, ge=1, lt=2**24 - 4096)  # VNIs given to stitches start here
    advert_ttl_s: float = Field(default=6.0, gt=0, le=3600)      # a site silent this long is gone
    # Encrypted stitches: WireGuard links get /30s of this range and UDP ports from
    # wg_port_base (stitch index i: the i-th /30, port wg_port_base + i).
    wg_inner_cidr: str = "10.99.0.0/16"
    # How encrypted stitches are encrypted: "wireguard" (a WireGuard link per stitch,
    # what the lab runs) or "ovs-ipsec" (Open vSwitch IPsec on the stitch's tunnel
    # ports: needs the kernel datapath and ovs-monitor-ipsec at every site; a site
    # without them refuses the tunnel and the stitch carries nothing).
    encryption: Literal["wireguard", "ovs-ipsec"] = "wireguard"
    wg_port_base: int = Field(default=51820, ge=1024, le=60000)
    # Terminate a stitch whose demand (forecast horizon_s ahead at quantile when a
    # predictor is connected, else measured) stays below idle_mbps for idle_after_s.
    # idle_mbps 0: stitches end only on request.
    idle_mbps: float = Field(default=0.0, ge=0)
    idle_after_s: float = Field(default=300.0, gt=0)
    horizon_s: float = Field(default=300.0, gt=0)
    quantile: float = Field(default=0.9, gt=0, lt=1)
    policy: tuple[StitchRuleConfig, ...] = ()
    predicted: tuple[PredictedStitchConfig, ...] = ()

    @field_validator("wg_inner_cidr")
    @classmethod
    def _inner(cls, value: str) -> str:
        try:
            net = ipaddress.IPv4Network(value)
        except ValueError as err:
            raise ValueError(f"not an IPv4 network: {err}") from None
        if net.prefixlen > 28:
            raise ValueError(f"{value} is too small: it holds a /30 per encrypted stitch")
        return str(net)

    @field_validator("policy")
    @classmethod
    def _unique_names(cls, rules):
        names = [r.name for r in rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule name(s) repeat: {', '.join(dup)}")
        return rules
