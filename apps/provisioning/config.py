"""The ``provisioning`` config section (``apps.provisioning.app:provider`` in controller.providers).

Horizons and deadlines are app-clock seconds (``controller.clock``); ``interval_s``
and ``anomaly_poll_s`` are real seconds between evaluations and anomaly polls.
"""

from __future__ import annotations

import importlib
from typing import Literal

from pydantic import Field, field_validator, model_validator

from controller.config import Section, key_error

MODES = ("auto", "approval")


class ProvisioningConfig(Section):
    store_path: str = "/var/lib/foresight/provisioning.sqlite"  # "" keeps changes in memory only
    interval_s: float = Field(default=60.0, gt=0, le=86400)  # real s between evaluations
    anomaly_poll_s: float = Field(default=10.0, gt=0, le=3600)  # real s between GetAnomalies polls
    horizons_s: tuple[float, ...] = (300.0, 900.0, 1800.0, 3600.0)  # forecast horizons asked for
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9, 0.95)  # forecast quantiles asked for
    # P(exceed) that raises a need; None: 1 - service_quantile (the capacity no longer covers
    # the demand at the service quantile somewhere within the horizon)
    threshold: float | None = Field(default=None, gt=0, lt=1)
    service_quantile: float = Field(default=0.95, gt=0, lt=1)  # the demand a change must cover
    headroom: float = Field(default=0.9, gt=0, le=1)  # need / headroom = the capacity asked for
    urgency_s: float = Field(default=900.0, gt=0)  # time to impact that halves urgency
    templates: dict[str, str] = {}  # resource kind -> template name
    modes: dict[str, Literal["auto", "approval"]] = {}  # template name -> mode
    default_mode: Literal["auto", "approval"] = "auto"
    auto: bool = True  # false: recommend only, never stage alone
    per_step: int = Field(default=4, ge=0, le=100)  # changes taken up per evaluation
    confirm_timeout_s: float = Field(default=10.0, gt=0, le=600)
    outcome_after_s: float = Field(default=900.0, ge=0)  # app s after the crossing to judge
    isolate: tuple[tuple[str, ...], ...] = ()  # host MAC sets that must not reach each other
    rehearsal: str = ""  # "module:factory" of a Rehearsal ("" none)
    rehearsal_options: dict = {}  # given to the rehearsal's factory: factory(view, options)
    template_modules: tuple[str, ...] = ()  # modules that register more templates (imported first)
    # links as resources: those whose capacity the topology metadata states, all with a
    # known capacity (port speed too), or none
    link_needs: Literal["off", "metadata", "all"] = "metadata"
    # resource kinds whose measured demand this app sends to the predictor (their owners
    # do not: links are measured by the core, QoS classes at their meters)
    feed: tuple[Literal["link", "meter"], ...] = ("link", "meter")
    # a spare link brought into (or out of) service must show in the topology (both ways,
    # or neither) within this many real seconds, else the deploy fails (LLDP finds it)
    link_timeout_s: float = Field(default=15.0, gt=0, le=600)

    @field_validator("horizons_s")
    @classmethod
    def _horizons(cls, v):
        if not v or any(h <= 0 for h in v):
            raise ValueError("needs at least one horizon, each > 0")
        return tuple(sorted(v))

    @field_validator("quantiles")
    @classmethod
    def _quantiles(cls, v):
        if len(v) < 2 or any(not 0 < q < 1 for q in v):
            raise ValueError("needs at least two quantiles, each in (0, 1)")
        return tuple(sorted(set(v)))

    @model_validator(mode="after")
    def _known_templates(self) -> "ProvisioningConfig":
        from apps.provisioning.templates import TEMPLATES

        for i, module in enumerate(self.template_modules):
            try:
                importlib.import_module(module)
            except ImportError as err:
                raise key_error(("template_modules", i), f"cannot import {module!r}: {err}") from None

        for kind, name in self.templates.items():
            if name not in TEMPLATES:
                raise key_error(
                    ("templates", kind), f"unknown template {name!r} (known: {', '.join(sorted(TEMPLATES))})"
                )
        for name in self.modes:
            if name not in TEMPLATES:
                raise key_error(("modes", name), f"unknown template (known: {', '.join(sorted(TEMPLATES))})")
        return self
