"""Controller configuration: YAML, safe-loaded, validated against a declared schema.

A config is loaded once and is immutable afterwards. Duplicate keys, unknown keys
and wrong types are rejected with a message that names the offending key, e.g.
``controller.grpc.port: Input should be a valid integer``. The schema is the set
of pydantic models below plus one section per app, which each app declares in its
own package and registers when it is imported (``register_section``; ``parse``
imports the modules ``controller.providers`` names first). Every field says its unit
in its name.

Example::

    controller:
      openflow: {listen_host: 0.0.0.0, port: 6653}
      grpc: {listen_host: 127.0.0.1, port: 50051}
      metrics: {listen_host: 127.0.0.1, port: 9302}
      discovery: {lldp_interval_s: 1.0, link_timeout_s: 3.5}
      telemetry: {poll_interval_s: 2.0}
      routing: {path_metric: hops}
      state: {path: /var/lib/foresight/controller.sqlite}
      providers: []     # apps, as package.module:factory; called with (view, resync)
    topology:
      switches: [{dp_id: 1, name: ATLAng}]
      links: [{a: 1, b: 2, capacity_mbps: 9920}]
"""

from __future__ import annotations

import importlib
import importlib.metadata
import ipaddress
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names what is wrong."""


class Section(BaseModel):
    """Base of every config model: unknown keys refused, immutable once loaded. Apps
    derive their sections from it (``controller.appbase.AppSpec.schema``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def key_error(loc: tuple, message: str) -> ValidationError:
    """A validation error located at ``loc`` under the model being validated, so the
    reported key is the one that is wrong (``qos.classes.1.dscp.0``), not its section."""
    return ValidationError.from_exception_data("config", [InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=loc, input=None)])


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as err:
        raise ValueError(f"not an IP address: {value!r}") from err
    return value


class Endpoint(Section):
    listen_host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)

    _host = field_validator("listen_host")(_check_host)


class OpenFlowConfig(Endpoint):
    listen_host: str = "0.0.0.0"
    port: int = Field(default=6653, ge=0, le=65535)
    echo_interval_s: float = Field(default=2.0, gt=0)
    echo_max_missed: int = Field(default=3, ge=1)


class GrpcConfig(Endpoint):
    port: int = Field(default=50051, ge=0, le=65535)
    max_workers: int = Field(default=8, ge=1, le=256)
    # Also serve on this unix socket ("": no): route managers in site namespaces,
    # which cannot reach the root namespace's loopback, come in through it.
    unix_socket: str = ""


class MetricsConfig(Endpoint):
    port: int = Field(default=9302, ge=0, le=65535)
    enabled: bool = True


MAX_PACKET_IN_PPS = 1_000_000


class DiscoveryConfig(Section):
    lldp_interval_s: float = Field(default=1.0, gt=0, le=60)
    link_timeout_s: float = Field(default=3.5, gt=0, le=600)
    # A port is treated as a host (edge) port once it has been up this long
    # without an LLDP frame arriving on it.
    edge_after_s: float = Field(default=2.5, gt=0, le=600)
    # After a restart, restored switches and links are kept this long for the
    # switches to reconnect (OVS retries with a backoff of up to 8 s by default).
    restart_hold_s: float = Field(default=15.0, ge=0, le=3600)
    # Frames a switch sends to the controller from the data plane (first packets to
    # unknown destinations, broadcast ARP) pass a meter of this many packets/s per
    # switch, so a flood of them cannot queue LLDP (never metered) past
    # link_timeout_s; 0: unmetered (switches without OpenFlow meters).
    packet_in_pps: int = Field(default=1000, ge=0, le=MAX_PACKET_IN_PPS, strict=True)
    # ... letting this many through at once above the rate; 0: one second's worth.
    packet_in_burst_pkts: int = Field(default=0, ge=0, le=MAX_PACKET_IN_PPS, strict=True)

    @model_validator(mode="after")
    def _timeout_exceeds_interval(self) -> "DiscoveryConfig":
        if self.link_timeout_s <= self.lldp_interval_s:
            raise ValueError("link_timeout_s must be greater than lldp_interval_s")
        return self

    @model_validator(mode="after")
    def _burst_needs_a_rate(self) -> "DiscoveryConfig":
        if self.packet_in_burst_pkts and not self.packet_in_pps:
            raise ValueError("packet_in_burst_pkts is set but packet_in_pps is 0 (packet-ins unmetered)")
        return self

    @property
    def packet_in_burst(self) -> int:
        """The packet-in meter's burst in packets (0 when unmetered)."""
        return self.packet_in_burst_pkts or self.packet_in_pps


class TelemetryConfig(Section):
    poll_interval_s: float = Field(default=2.0, gt=0, le=3600)


class RoutingConfig(Section):
    # hops: every link costs 1; inverse_capacity: OSPF-style reference/capacity.
    path_metric: Literal["hops", "inverse_capacity"] = "hops"
    reference_mbps: float = Field(default=100000.0, gt=0)
    # Pre-install a link-disjoint detour for every hop of every path in OpenFlow
    # fast-failover groups, so a switch moves traffic off a dead port by itself
    # (controller.forwarding); false: only the controller reroutes, after a port-down.
    fast_failover: bool = True
    # Make before break: deletions wait this long after a reroute's turn is confirmed,
    # so packets already sent the old way finish their trip (in link queues, or in a
    # switch's datapath flow cache, which Open vSwitch revalidates after the barrier
    # reply: a ring4 restore lost a datagram where the old flow went 2 ms after the turn).
    drain_s: float = Field(default=0.2, ge=0, le=1.0)


class SyncConfig(Section):
    # Send each switch's share of a sync as one OpenFlow bundle (ONF EXT-230, see
    # controller.bundles): the switch applies all of it or, refusing one message, none.
    # Off by default: it costs a round trip per switch and sync (the commit waits for a
    # barrier after the adds, as Open vSwitch drops a refused add from the bundle and
    # would commit the rest), and it is verified on Open vSwitch 3.1 only; a switch
    # that refuses bundles themselves is sent plain messages from then on.
    bundles: bool = False


class StateConfig(Section):
    # SQLite file for what must survive a restart; "" keeps state in memory only.
    path: str = "/var/lib/foresight/controller.sqlite"


class PredictorLinkConfig(Section):
    # host:port of foresight-predictor; "" = reactive mode (decisions use measurements only).
    address: str = ""
    timeout_s: float = Field(default=2.0, gt=0, le=60)


class ClockConfig(Section):
    # The time apps reason in (forecasts, scaling timers). Labs replay 5-minute data
    # faster than real time: virtual = virtual_origin_s + (now - real_origin_s) * time_scale.
    # The defaults are the wall clock.
    time_scale: float = Field(default=1.0, gt=0, le=100000)
    virtual_origin_s: float = 0.0
    real_origin_s: float = 0.0

    def virtual(self, now: float) -> float:
        return self.virtual_origin_s + (now - self.real_origin_s) * self.time_scale

    def real_seconds(self, virtual_s: float) -> float:
        """How long ``virtual_s`` virtual seconds take in real time."""
        return virtual_s / self.time_scale


_FACTORY_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _check_factory_paths(paths: tuple[str, ...]) -> tuple[str, ...]:
    for i, path in enumerate(paths):
        if not _FACTORY_PATH.match(path):
            raise ValueError(f"item {i}: {path!r} is not 'package.module:factory'")
    if len(set(paths)) != len(paths):
        raise ValueError("a provider is listed twice")
    return paths


class ControllerSection(Section):
    openflow: OpenFlowConfig = OpenFlowConfig()
    grpc: GrpcConfig = GrpcConfig()
    metrics: MetricsConfig = MetricsConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    routing: RoutingConfig = RoutingConfig()
    sync: SyncConfig = SyncConfig()
    state: StateConfig = StateConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Apps (controller.appbase.App), as 'package.module:factory'; the factory is called
    # with (view, resync): a controller.appbase.CoreView and what to call after its intent changed.
    providers: tuple[str, ...] = ()
    predictor: PredictorLinkConfig = PredictorLinkConfig()
    clock: ClockConfig = ClockConfig()

    _providers = field_validator("providers")(_check_factory_paths)


class SwitchMeta(Section):
    dp_id: int = Field(ge=1, lt=2**64)
    name: str = Field(min_length=1, max_length=64)
    site: str | None = None


class LinkMeta(Section):
    a: int = Field(ge=1, lt=2**64, description="dp_id of one end")
    b: int = Field(ge=1, lt=2**64, description="dp_id of the other end")
    capacity_mbps: float = Field(gt=0, description="capacity in each direction")


class TopologyMeta(Section):
    """What is known about the network before discovery: names and capacities."""

    switches: tuple[SwitchMeta, ...] = ()
    links: tuple[LinkMeta, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> "TopologyMeta":
        seen: set[int] = set()
        names: set[str] = set()
        for i, sw in enumerate(self.switches):
            if sw.dp_id in seen:
                raise ValueError(f"switches.{i}.dp_id: duplicate dp_id {sw.dp_id}")
            if sw.name in names:
                raise ValueError(f"switches.{i}.name: duplicate name {sw.name!r}")
            seen.add(sw.dp_id)
            names.add(sw.name)
        pairs: set[tuple[int, int]] = set()
        for i, link in enumerate(self.links):
            if link.a == link.b:
                raise ValueError(f"links.{i}: a and b are the same switch {link.a}")
            pair = (min(link.a, link.b), max(link.a, link.b))
            if pair in pairs:
                raise ValueError(f"links.{i}: duplicate link between {pair[0]} and {pair[1]}")
            pairs.add(pair)
        return self

    def capacity_mbps(self, dp_a: int, dp_b: int) -> float | None:
        for link in self.links:
            if {link.a, link.b} == {dp_a, dp_b}:
                return link.capacity_mbps
        return None

    def name_of(self, dp_id: int) -> str | None:
        for sw in self.switches:
            if sw.dp_id == dp_id:
                return sw.name
        return None


class Config(Section):
    """The controller's own sections; ``parse`` adds a section per registered app
    (``register_section``), validated by the app's schema."""

    controller: ControllerSection = ControllerSection()
    topology: TopologyMeta = TopologyMeta()

    def section(self, name: str) -> BaseModel:
        """An app's section as loaded, or its defaults when the file has none;
        ConfigError if no app registered ``name``."""
        value = self.__dict__.get(name)
        if value is not None:
            return value
        if name not in SECTIONS:
            raise ConfigError(f"no app registered the config section {name!r} "
                              f"(registered: {sorted(SECTIONS) or 'none'})")
        return SECTIONS[name]()


# Top-level section name -> its schema, registered by apps at import time.
SECTIONS: dict[str, type[BaseModel]] = {}
_MODELS: dict[tuple, type[Config]] = {}


def register_section(name: str, schema: type[BaseModel]) -> None:
    """Validate the top-level key ``name`` with ``schema`` (an app's section). The same
    schema again is a no-op; a name taken by another schema raises ConfigError."""
    if name in Config.model_fields or not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
        raise ConfigError(f"config section {name!r}: not a name an app may take")
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise ConfigError(f"config section {name!r}: schema {schema!r} is not a pydantic model")
    held = SECTIONS.get(name)
    if held is not None and held is not schema:
        raise ConfigError(f"config section {name!r} is already {held.__module__}.{held.__name__}")
    SECTIONS[name] = schema


def unregister_section(name: str) -> None:
    SECTIONS.pop(name, None)


def model() -> type[Config]:
    """``Config`` with a field for every registered app section."""
    key = tuple(sorted((name, id(schema)) for name, schema in SECTIONS.items()))
    cls = _MODELS.get(key)
    if cls is None:
        fields = {name: (schema, schema()) for name, schema in sorted(SECTIONS.items())}
        cls = _MODELS[key] = create_model("Config", __base__=Config, **fields)
    return cls


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys instead of keeping the last."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise ConfigError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1}, "
                f"column {key_node.start_mark.column + 1}")
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _format_errors(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{where}: {msg}")
    return "; ".join(lines)


def parse(text: str, source: str = "<string>") -> Config:
    """Parse and validate YAML text; raise ConfigError naming the bad key."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: invalid YAML: {err}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    unimportable = _import_providers(data)
    try:
        loaded = model().model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format_errors(err)}") from None
    if unimportable:
        raise ConfigError(f"{source}: {unimportable}")
    return loaded


APP_ENTRY_POINTS = "foresight.apps"     # name: an app's config section, value: its package


def _import_providers(data: dict) -> str:
    """Import the modules ``controller.providers`` names, and the app packages that own
    the file's other top-level sections (entry points ``foresight.apps``: an app that
    is configured but not listed, i.e. switched off, is still checked), so the apps
    register their config sections before the file is validated against them; what
    could not be imported, or "" (reported after validation, which names a malformed
    list first)."""
    unknown = [key for key in data if key not in Config.model_fields and key not in SECTIONS]
    if unknown:
        found = {ep.name: ep for ep in importlib.metadata.entry_points(group=APP_ENTRY_POINTS)}
        for key in unknown:
            if isinstance(key, str) and key in found:
                try:
                    found[key].load()
                except ImportError as err:
                    return f"{key}: cannot import its app {found[key].value}: {err}"
    section = data.get("controller")
    providers = section.get("providers") if isinstance(section, dict) else None
    if not isinstance(providers, (list, tuple)):
        return ""
    for i, path in enumerate(providers):
        if not isinstance(path, str) or not _FACTORY_PATH.match(path):
            continue
        module = path.partition(":")[0]
        try:
            importlib.import_module(module)
        except ImportError as err:
            return f"controller.providers.{i}: cannot import {module}: {err}"
    return ""


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    return parse(text, str(path))


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
