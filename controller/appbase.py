"""The app contract: how an app plugs into the controller without the controller naming it.

An app is a package under ``apps/`` (or anywhere importable). Two things make it one:

1. **Registration, when its package is imported** (``register(AppSpec(...))`` in the
   package's ``__init__``): its owner name and code (the top bits of its flow cookies
   and, with ``ids``, of its group and meter ids: ``controller.cookies``), the tables
   it owns and the shared tables that may jump to them, its priority band in each
   shared table it writes to (``controller.pipeline``), and its config section with
   the schema that validates it (``controller.config``). Everything the controller
   needs to know about an app comes from here; nothing under ``controller/`` lists
   apps.
2. **An ``App`` subclass**, which a factory named in ``controller.providers``
   (``package.module:factory``) builds from a ``CoreView`` and ``resync``. ``App``
   declares every hook the controller calls, each with a default that does nothing,
   so an app overrides only what it uses and the controller never probes for
   attributes.

Apps see the core through ``CoreView``: a read-only, typed view (topology, hosts,
edge ports, paths, confirmation marks) plus counters the app owns. They never touch
the core's switches, lock or managers, and they never send: they say what they want
(``desired``) and call ``resync()`` when that changed.
"""

from __future__ import annotations

import contextlib
import re
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Iterator, Literal

import networkx as nx
from pydantic import BaseModel

from controller import config as config_mod
from controller import cookies
from controller.desired import Desired, Entries
from controller.pipeline import PIPELINE, Band, PipelineError, Table

if TYPE_CHECKING:
    from controller.config import Config
    from controller.core import ControllerCore, Mark
    from controller.hosts import Host
    from controller.topology import LinkView


class RegistrationError(ValueError):
    """An app's registration clashes with another's or is malformed; the message names both."""


class KnobError(ValueError):
    """A knob that does not exist, or a value it refuses; the message names the knob."""


@dataclass(frozen=True)
class Knob:
    """One number of an app's intent that another party (an operator, the provisioning
    app) may change through ``App.set_knob``: a slice's bandwidth, a stitch's
    reservation, a QoS class's meter rate. ``low``..``high`` is the range the app
    accepts; ``series_id`` names the predictor series of the demand it serves (""
    none), ``measured_mbps`` that demand as last measured; ``structural``: changing it
    changes which flows and groups exist, not only rates."""

    kind: str                       # "slice", "stitch", "meter"
    target: str                     # the slice's, stitch's or class's name
    field: str                      # "bandwidth_mbps", "rate_mbps"
    value: float
    low: float
    high: float
    series_id: str = ""
    measured_mbps: float | None = None
    switches: tuple[int, ...] = ()
    structural: bool = False

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.target}.{self.field}"


@dataclass(frozen=True)
class AppSpec:
    """What an app registers (see the module docstring)."""

    name: str                                       # owner name: cookies, ids, counters, logs
    code: int                                       # 0x01..0xfe, for good: switches hold it
    ids: bool = False                               # it puts groups or meters on switches
    tables: tuple[Table, ...] = ()                  # tables of its own (owner = name)
    entries: tuple[tuple[str, str], ...] = ()       # (shared table, own table): jumps allowed
    bands: tuple[tuple[str, int, int], ...] = ()    # (shared table, low, high) priorities
    section: str = ""                               # its top-level config key ("" none)
    schema: type[BaseModel] | None = None           # ... and the model validating it
    summary: str = ""                               # one line for docs and logs


REGISTERED: dict[str, AppSpec] = {}
_registering = threading.Lock()


def register(spec: AppSpec) -> AppSpec:
    """Register an app's owner code, tables, bands and config section, all or nothing.
    Registering the same spec again (a module imported twice) is a no-op."""
    with _registering:
        held = REGISTERED.get(spec.name)
        if held is not None:
            if held == spec:
                return held
            raise RegistrationError(f"app {spec.name!r} is already registered differently")
        _check(spec)
        try:
            cookies.register_owner(spec.name, spec.code, ids=spec.ids, what=spec.summary)
            for table in spec.tables:
                PIPELINE.add_table(table, tuple(src for src, own in spec.entries if own == table.name))
            for table, low, high in spec.bands:
                PIPELINE.add_band(Band(table, spec.name, low, high))
            if spec.section:
                config_mod.register_section(spec.section, spec.schema)
        except (cookies.CookieError, PipelineError, config_mod.ConfigError) as err:
            _forget(spec)
            raise RegistrationError(f"app {spec.name!r}: {err}") from None
        REGISTERED[spec.name] = spec
        return spec


def unregister(name: str) -> None:
    """Forget a registered app (a test that registers one of its own cleans up with this)."""
    with _registering:
        spec = REGISTERED.pop(name, None)
        if spec is not None:
            _forget(spec)


def _forget(spec: AppSpec) -> None:
    """Undo what ``spec`` registered (and only that: a clash leaves the holder alone)."""
    PIPELINE.remove_owner(spec.name)
    if cookies.OWNERS.get(spec.name) == cookies.COOKIE_BASE | spec.code:
        cookies.unregister_owner(spec.name)
    if spec.section and config_mod.SECTIONS.get(spec.section) is spec.schema:
        config_mod.unregister_section(spec.section)


def _check(spec: AppSpec) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", spec.name):
        raise RegistrationError(f"app name {spec.name!r}: lower-case letters, digits and _ (at most 32)")
    if spec.name in ("pipeline", "forwarding", "flooding", cookies.LEARNED):
        raise RegistrationError(f"app name {spec.name!r} is the controller's own owner")
    for table in spec.tables:
        if table.owner != spec.name:
            raise RegistrationError(f"app {spec.name!r}: table {table.name!r} "
                                    f"says its owner is {table.owner!r}")
    own = {t.name for t in spec.tables}
    for source, target in spec.entries:
        if target not in own:
            raise RegistrationError(f"app {spec.name!r}: entry {source!r} -> {target!r}: "
                                    f"not one of its tables")
    if bool(spec.section) != (spec.schema is not None):
        raise RegistrationError(f"app {spec.name!r}: a config section needs both its name and its schema")


# ---- the read-only view of the core ------------------------------------------------------

class CoreView:
    """What an app may read of the core, and the counters it owns. Every method takes the
    core's lock itself; ``reading()`` holds it across several reads that must agree.
    Objects handed out (hosts, graphs) are the core's: read them, never change them."""

    def __init__(self, core: ControllerCore):
        self._core = core

    # -- configuration and time
    @property
    def config(self) -> Config:
        return self._core.config

    def section(self, name: str) -> BaseModel:
        """An app's config section as loaded (or its defaults)."""
        return self._core.config.section(name)

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Hold the core still while reading several things that must agree."""
        with self._core.lock:
            yield

    # -- versions: a number that changes whenever the thing it names does
    @property
    def topology_version(self) -> int:
        return self._core.topology.version

    @property
    def hosts_version(self) -> int:
        return self._core.hosts.version

    @property
    def forwarding_version(self) -> int:
        return self._core.forwarding.version

    # -- switches and links
    def graph(self) -> nx.DiGraph:
        """The live switch graph (edges carry ``weight``), read-only."""
        with self._core.lock:
            return self._core.topology.simple_graph().copy(as_view=True)

    def links(self) -> list[LinkView]:
        with self._core.lock:
            return self._core.topology.links()

    def shortest_path(self, src_dp: int, dst_dp: int) -> list[int] | None:
        with self._core.lock:
            return self._core.topology.shortest_path(src_dp, dst_dp)

    def hop_ports(self, path: list[int]) -> list[tuple[int, int, int]]:
        """(dp_id, in_port, out_port) per switch of ``path``."""
        with self._core.lock:
            return self._core.topology.hop_ports(path)

    def edge_ports(self, dp_id: int, now: float) -> set[int]:
        """The switch's ports that face hosts (up, and no LLDP seen on them)."""
        with self._core.lock:
            return self._core.topology.edge_ports(dp_id, now,
                                                  self._core.config.controller.discovery.edge_after_s)

    def port_numbers(self, dp_id: int) -> dict[str, int]:
        """Port name -> number on a switch ({} if it is unknown)."""
        with self._core.lock:
            switch = self._core.topology.switches.get(dp_id)
            return {} if switch is None else {p.name: n for n, p in switch.ports.items() if p.name}

    def switch_name(self, dp_id: int) -> str:
        return self._core.config.topology.name_of(dp_id) or f"dp{dp_id:x}"

    def switch_label(self, dp_id: int) -> str:
        return self._core.switch_label(dp_id)

    def capacity_mbps(self, dp_a: int, dp_b: int) -> float | None:
        """The link capacity the config's topology gives, if any."""
        return self._core.config.topology.capacity_mbps(dp_a, dp_b)

    # -- hosts and the pairs forwarded between them
    def host(self, mac: str) -> Host | None:
        with self._core.lock:
            return self._core.hosts.get(mac)

    def host_by_ip(self, ip: str) -> Host | None:
        with self._core.lock:
            return self._core.hosts.by_ip(ip)

    def hosts(self) -> list[Host]:
        with self._core.lock:
            return self._core.hosts.all()

    def forwarded_pairs(self) -> list[tuple[str, str]]:
        """(src MAC, dst MAC) of every host pair with an installed path, sorted."""
        with self._core.lock:
            return sorted(self._core.forwarding.paths)

    # -- confirmation: has what was sent reached the switches?
    def sync_mark(self, since: Mark | None = None) -> Mark:
        return self._core.sync_mark(since)

    def unconfirmed(self, mark: Mark) -> list[int]:
        return self._core.unconfirmed(mark)

    def wait_confirmed(self, mark: Mark, timeout_s: float) -> bool:
        return self._core.wait_confirmed(mark, timeout_s)

    def refusals(self, mark: Mark) -> list[str]:
        """What switches of ``mark`` refused of what it waits for (OpenFlow errors), now."""
        return self._core.refusals(mark)

    # -- switches as a whole: what they should hold and what they hold
    def switch_ids(self) -> list[int]:
        """The switches connected now, sorted."""
        with self._core.lock:
            return sorted(self._core.switches)

    def desired_state(self, dp_id: int, now: float) -> Entries:
        """Everything the core and every app want on ``dp_id`` (merged, as it would be sent)."""
        with self._core.lock:
            return self._core.desired(dp_id, now)

    def installed_state(self, dp_id: int) -> Entries | None:
        """What ``dp_id`` holds as the core knows it (None until reconciled)."""
        return self._core.installed_state(dp_id)

    # -- other apps' knobs (``App.knobs``), by kind
    def knobs(self) -> list[Knob]:
        """Every app's knobs, sorted by key."""
        out: list[Knob] = []
        for app in self._apps():
            out.extend(app.knobs())
        return sorted(out, key=lambda k: k.key)

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        """Set a knob through the app that publishes it; ``KnobError`` if none does or
        the app refuses the value. Returns the knob as it is now."""
        for app in self._apps():
            if any(k.kind == kind and k.target == target and k.field == field for k in app.knobs()):
                return app.set_knob(kind, target, field, value)
        raise KnobError(f"{kind}:{target}.{field}: no app has this knob")

    def _apps(self) -> list[App]:
        with self._core.lock:
            return [self._core.providers[n] for n in sorted(self._core.providers)]

    # -- counters the app owns (GetStatus and /metrics show them with the core's)
    def count(self, name: str, n: int = 1) -> None:
        with self._core.lock:
            self._core.counters[name] += n

    def counter(self, name: str) -> int:
        with self._core.lock:
            return self._core.counters[name]


# ---- the app --------------------------------------------------------------------------------

BasisMode = Literal["predictive", "reactive"]
NOTHING = Desired()


class App:
    """Base of every app: each hook the controller calls, with a default that does nothing.

    ``name`` is the owner name the app's package registered. ``desired`` must be cheap
    and pure: it runs on every change, for every switch, under the core's lock (so it
    must not wait for a lock its app holds while calling ``resync``)."""

    name: ClassVar[str] = ""

    def __init__(self, view: CoreView, resync: Callable[[], None] = lambda: None):
        if self.name not in REGISTERED:
            raise RegistrationError(f"{type(self).__name__}: app {self.name!r} is not registered "
                                    f"(its package registers it: controller.appbase.register)")
        self.view = view
        self.resync = resync

    # -- what the switches should hold
    def desired(self, dp_id: int, now: float) -> Desired:
        """The flows, groups and meters this app wants on ``dp_id``, and the ports it wants
        held administratively down there (``Desired.ports_down``, ``controller.ports``)."""
        return NOTHING

    def claims(self, ip: str) -> str | None:
        """The MAC the controller answers an ARP request for ``ip`` with, if the app owns it."""
        return None

    # -- numbers of its intent others may change (``Knob``)
    def knobs(self) -> list[Knob]:
        """The knobs this app publishes, as they are now."""
        return []

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        """Change one of its knobs (and resync); ``KnobError`` naming it if it refuses."""
        raise KnobError(f"{kind}:{target}.{field}: app {self.name!r} has no such knob")

    # -- counters of its own meters and groups (every telemetry poll)
    def meter_stats(self, dp_id: int, stats: list, now: float) -> None:
        """``OFPMeterStats`` of the meters in this app's id range on one switch."""

    def group_stats(self, dp_id: int, stats: list, now: float) -> None:
        """``OFPGroupStats`` of the groups in this app's id range on one switch."""

    # -- northbound
    def grpc_services(self) -> list[tuple[str, Callable]]:
        """Services the controller's gRPC server carries for this app: (full name, add(server))."""
        return []

    def metric_families(self) -> list:
        """Prometheus metric families, read at scrape time."""
        return []

    def basis(self) -> BasisMode | None:
        """Whether the app's decisions currently rest on forecasts; None if it makes none."""
        return None

    # -- lifecycle
    def start(self) -> None:
        """After registration with the core: start background work."""

    def stopping(self) -> None:
        """Before the gRPC server stops: end streams, stop starting new work."""

    def close(self) -> None:
        """At shutdown: stop background work, release files."""
