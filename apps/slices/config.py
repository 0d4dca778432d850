"""The ``slices`` config section (``apps.slices.app:provider`` in controller.providers)."""

from __future__ import annotations

from pydantic import Field

from controller.config import Section


class PoolMemberConfig(Section):
    pool: str
    host_id: str
    ipv4: str
    labels: dict[str, str] = {}


class SliceScalingConfig(Section):
    enabled: bool = True                                         # false: slices change only on request
    interval_s: float = Field(default=10.0, gt=0, le=3600)       # real seconds between scaling steps
    horizon_s: float = Field(default=300.0, ge=0)                # forecast horizon = lead time (virtual s)
    scale_down_after_s: float = Field(default=600.0, ge=0)       # virtual s of headroom before a scale-down
    down_margin: float = Field(default=0.2, ge=0, lt=1)
    zero_mbps: float = Field(default=0.01, ge=0)
    ingest: bool = True                                          # send slice demand to the predictor


class SlicesConfig(Section):
    # Used when controller.providers lists apps.slices.app:provider.
    store_path: str = "/var/lib/foresight/slices.sqlite"         # "" keeps slices in memory only
    # real s a removed member keeps its connections
    drain_s: float = Field(default=30.0, ge=0)
    members: tuple[PoolMemberConfig, ...] = ()                   # pool members known at start-up
    scaling: SliceScalingConfig = SliceScalingConfig()
