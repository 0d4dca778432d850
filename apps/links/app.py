"""The links app in the controller process: ``provider(view, resync)`` is its factory.

List ``apps.links.app:provider`` in ``controller.providers`` and the spares under
``links.spares``. ``LinksApp`` is a ``controller.appbase.App``: ``desired`` asks the
core to hold the two ports of every spare out of service administratively down
(``Desired.ports_down``); each spare's ``in_service`` is a knob (kind ``link``, 0 or
1) that the provisioning app's ``spare_link`` template sets. A change is written to
``links.state_path`` before it acts, then logged, then the switches are resynced: the
core sends the port mods, the ports come up (or go down) and LLDP finds (or loses)
the link. ``metric_families`` exposes ``foresight_links_in_service{link}``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client.core import GaugeMetricFamily

from apps.links import SPEC
from apps.links.config import LinksConfig
from apps.links.store import LinksStore, LinksStoreError
from controller.appbase import App, CoreView, Knob, KnobError
from controller.config import ConfigError, TopologyMeta
from controller.desired import Desired

LOG = logging.getLogger(__name__)

KIND, FIELD = "link", "in_service"


@dataclass(frozen=True)
class Spare:
    name: str
    a_dp: int
    a_port: int
    b_dp: int
    b_port: int

    def ends(self) -> tuple[tuple[int, int], tuple[int, int]]:
        return (self.a_dp, self.a_port), (self.b_dp, self.b_port)


def resolve_switch(ref: int | str, topology: TopologyMeta) -> int | None:
    """A switch named in ``topology.switches``, or a dp_id (number, decimal or 0x.. string)."""
    if isinstance(ref, int):
        return ref
    text = ref.strip()
    for sw in topology.switches:
        if sw.name == text:
            return sw.dp_id
    try:
        dp_id = int(text, 0)
    except ValueError:
        return None
    return dp_id if 1 <= dp_id < 2**64 else None


def spares_from(settings: LinksConfig, topology: TopologyMeta) -> tuple[Spare, ...]:
    """The configured spares with their switches resolved; ConfigError names the field."""
    out = []
    ends: dict[tuple[int, int], str] = {}
    for i, cfg in enumerate(settings.spares):
        dps = {}
        for side in ("a", "b"):
            dp = resolve_switch(getattr(cfg, side), topology)
            if dp is None:
                known = ", ".join(sw.name for sw in topology.switches) or "none"
                raise ConfigError(f"links.spares.{i}.{side}: no switch {getattr(cfg, side)!r} "
                                  f"(a name in topology.switches: {known}; or a dp_id)")
            dps[side] = dp
        if dps["a"] == dps["b"]:
            raise ConfigError(f"links.spares.{i}.b: the same switch as a (dp_id {dps['a']}): "
                              f"a spare joins two switches")
        spare = Spare(cfg.name, dps["a"], cfg.a_port, dps["b"], cfg.b_port)
        for side, end in zip(("a", "b"), spare.ends()):
            if end in ends:
                raise ConfigError(f"links.spares.{i}.{side}_port: dp_id {end[0]} port {end[1]} is "
                                  f"already spare {ends[end]!r}'s")
            ends[end] = cfg.name
        out.append(spare)
    return tuple(out)


class LinksApp(App):
    """Spare links held down until their knob brings them into service."""

    name = SPEC.name

    def __init__(self, view: CoreView, resync: Callable[[], None] = lambda: None,
                 settings: LinksConfig | None = None, store: LinksStore | None = None,
                 wall: Callable[[], float] = time.time):
        super().__init__(view, resync)
        settings = settings if settings is not None else view.section(SPEC.section)
        self.spares: dict[str, Spare] = {s.name: s for s in spares_from(settings, view.config.topology)}
        self.store = store
        self.wall = wall
        stored = store.in_service() if store is not None else {}
        for name in sorted(set(stored) - set(self.spares)):
            LOG.warning("links: the state file names spare %r, which links.spares no longer has; ignored",
                        name)
        self.in_service: dict[str, bool] = {name: stored.get(name, False) for name in self.spares}
        self._rebuild()

    def _rebuild(self) -> None:
        down: dict[int, list[int]] = {}
        for name, spare in self.spares.items():
            if not self.in_service[name]:
                for dp, port in spare.ends():
                    down.setdefault(dp, []).append(port)
        # desired() runs for every switch on every change: built once per change here.
        self._desired = {dp: Desired(ports_down=tuple(ports)) for dp, ports in down.items()}

    # --- controller.appbase.App ---------------------------------------------------------

    def desired(self, dp_id: int, now: float) -> Desired:
        return self._desired.get(dp_id) or super().desired(dp_id, now)

    def knobs(self) -> list[Knob]:
        return [Knob(KIND, name, FIELD, 1.0 if self.in_service[name] else 0.0, low=0.0, high=1.0,
                     switches=(spare.a_dp, spare.b_dp), structural=True)
                for name, spare in sorted(self.spares.items())]

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        """Bring spare ``target`` into service (1) or take it out (0); written to the state
        file first (a failed write changes nothing), then logged and resynced."""
        if (kind, field) != (KIND, FIELD) or target not in self.spares:
            return super().set_knob(kind, target, field, value)
        if isinstance(value, bool) or value not in (0, 1):
            raise KnobError(f"{kind}:{target}.{field}: {value!r} is not 0 (out of service) or 1 (in service)")
        on = value == 1
        if on != self.in_service[target]:
            if self.store is not None:
                try:
                    self.store.put(target, on, self.wall())
                except LinksStoreError as err:
                    self.view.count("links_store_errors")
                    raise KnobError(f"{kind}:{target}.{field}: not changed: {err}") from None
            self.in_service[target] = on
            self._rebuild()
            spare = self.spares[target]
            LOG.info("links: spare %s (%s port %d - %s port %d) %s", target,
                     self.view.switch_name(spare.a_dp), spare.a_port, self.view.switch_name(spare.b_dp),
                     spare.b_port, "into service: its ports come up" if on else
                     "out of service: its ports are held down")
            self.resync()
        return next(k for k in self.knobs() if k.target == target)

    def metric_families(self) -> list:
        gauge = GaugeMetricFamily("foresight_links_in_service", "A spare link: 1 in service, 0 held down",
                                  labels=["link"])
        for name in sorted(self.spares):
            gauge.add_metric([name], 1.0 if self.in_service[name] else 0.0)
        return [gauge]

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def provider(view: CoreView, resync: Callable[[], None]) -> LinksApp:
    settings: LinksConfig = view.section(SPEC.section)
    store = LinksStore(settings.state_path) if settings.state_path else None
    try:
        app = LinksApp(view, resync, settings, store)
    except BaseException:
        if store is not None:
            store.close()
        raise
    if not app.spares:
        LOG.warning("links: provider listed but links.spares is empty: no spare to hold")
    for name, spare in sorted(app.spares.items()):
        capacity = view.capacity_mbps(spare.a_dp, spare.b_dp)
        LOG.info("links: spare %s: %s port %d - %s port %d, %s, %s", name, view.switch_name(spare.a_dp),
                 spare.a_port, view.switch_name(spare.b_dp), spare.b_port,
                 f"{capacity:g} Mbit/s (topology.links)" if capacity is not None else
                 "no topology.links entry (capacity from the port speed)",
                 "in service" if app.in_service[name] else "out of service: ports held down")
    return app
