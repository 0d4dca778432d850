"""The ``te`` config section (``apps.te.app:provider`` in controller.providers)."""

from __future__ import annotations

from pydantic import Field

from controller.config import Section


class TeConfig(Section):
    """Traffic engineering (``apps.te.app:provider`` in controller.providers)."""

    interval_s: float = Field(default=10.0, gt=0, le=3600)      # real seconds between TE steps
    horizon_s: float = Field(default=300.0, gt=0)                # forecast horizon (app-clock seconds)
    quantile: float = Field(default=0.9, gt=0, lt=1)             # forecast quantile the TM is taken at
    k: int = Field(default=4, ge=1, le=16)                       # candidate paths per OD pair
    threshold: float = Field(default=0.8, gt=0, le=2)            # reroute when utilisation crosses it
    # a new plan must cut the MLU by this fraction
    min_gain: float = Field(default=0.05, ge=0, lt=1)
    default_capacity_mbps: float = Field(default=100.0, gt=0)    # links without topology.links capacity
    # Stitched traffic (switch-name pairs) is placed first and keeps this fraction free.
    priority_pairs: tuple[tuple[str, str], ...] = ()
    headroom: float = Field(default=0.2, ge=0, lt=1)
    ingest: bool = True                                          # send measured OD rates to the predictor
    decisions_path: str = ""                                     # append one JSON line per TE step here
