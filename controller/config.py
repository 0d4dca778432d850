"""Controller configuration: YAML, safe-loaded, validated against a declared schema.

A config is loaded once and is immutable afterwards. Duplicate keys, unknown keys
and wrong types are rejected with a message that names the offending key, e.g.
``controller.grpc.port: Input should be a valid integer``. The schema is the set
of pydantic models below; every field says its unit in its name.

Example::

    controller:
      openflow: {listen_host: 0.0.0.0, port: 6653}
      grpc: {listen_host: 127.0.0.1, port: 50051}
      metrics: {listen_host: 127.0.0.1, port: 9302}
      discovery: {lldp_interval_s: 1.0, link_timeout_s: 3.5}
      telemetry: {poll_interval_s: 2.0}
      routing: {path_metric: hops}
      state: {path: /var/lib/foresight/controller.sqlite}
      providers: []     # apps, as package.module:factory; called with (core, resync)
    topology:
      switches: [{dp_id: 1, name: ATLAng}]
      links: [{a: 1, b: 2, capacity_mbps: 9920}]
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names what is wrong."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError as err:
        raise ValueError(f"not an IP address: {value!r}") from err
    return value


class Endpoint(_Strict):
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


class DiscoveryConfig(_Strict):
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


class TelemetryConfig(_Strict):
    poll_interval_s: float = Field(default=2.0, gt=0, le=3600)


class RoutingConfig(_Strict):
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


class StateConfig(_Strict):
    # SQLite file for what must survive a restart; "" keeps state in memory only.
    path: str = "/var/lib/foresight/controller.sqlite"


class PredictorLinkConfig(_Strict):
    # host:port of foresight-predictor; "" = reactive mode (decisions use measurements only).
    address: str = ""
    timeout_s: float = Field(default=2.0, gt=0, le=60)


class ClockConfig(_Strict):
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


class ControllerSection(_Strict):
    openflow: OpenFlowConfig = OpenFlowConfig()
    grpc: GrpcConfig = GrpcConfig()
    metrics: MetricsConfig = MetricsConfig()
    discovery: DiscoveryConfig = DiscoveryConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    routing: RoutingConfig = RoutingConfig()
    state: StateConfig = StateConfig()
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Apps that declare flows, groups and meters (controller.desired.Provider),
    # as 'package.module:factory'; the factory is called with (core, resync).
    providers: tuple[str, ...] = ()
    predictor: PredictorLinkConfig = PredictorLinkConfig()
    clock: ClockConfig = ClockConfig()

    _providers = field_validator("providers")(_check_factory_paths)


class PoolMemberConfig(_Strict):
    pool: str
    host_id: str
    ipv4: str
    labels: dict[str, str] = {}


class SliceScalingConfig(_Strict):
    enabled: bool = True                                         # false: slices change only on request
    interval_s: float = Field(default=10.0, gt=0, le=3600)       # real seconds between scaling steps
    horizon_s: float = Field(default=300.0, ge=0)                # forecast horizon = lead time (virtual s)
    scale_down_after_s: float = Field(default=600.0, ge=0)       # virtual s of headroom before a scale-down
    down_margin: float = Field(default=0.2, ge=0, lt=1)
    zero_mbps: float = Field(default=0.01, ge=0)
    ingest: bool = True                                          # send slice demand to the predictor


class SlicesConfig(_Strict):
    # Used when controller.providers lists apps.slices.app:provider.
    store_path: str = "/var/lib/foresight/slices.sqlite"         # "" keeps slices in memory only
    drain_s: float = Field(default=30.0, ge=0)                   # real s a removed member keeps its connections
    members: tuple[PoolMemberConfig, ...] = ()                   # pool members known at start-up
    scaling: SliceScalingConfig = SliceScalingConfig()


class TeConfig(_Strict):
    """Traffic engineering (``apps.te.app:provider`` in controller.providers)."""

    interval_s: float = Field(default=10.0, gt=0, le=3600)      # real seconds between TE steps
    horizon_s: float = Field(default=300.0, gt=0)                # forecast horizon (app-clock seconds)
    quantile: float = Field(default=0.9, gt=0, lt=1)             # forecast quantile the TM is taken at
    k: int = Field(default=4, ge=1, le=16)                       # candidate paths per OD pair
    threshold: float = Field(default=0.8, gt=0, le=2)            # reroute when utilisation crosses it
    min_gain: float = Field(default=0.05, ge=0, lt=1)            # a new plan must cut the MLU by this fraction
    default_capacity_mbps: float = Field(default=100.0, gt=0)    # links without topology.links capacity
    # Stitched traffic (switch-name pairs) is placed first and keeps this fraction free.
    priority_pairs: tuple[tuple[str, str], ...] = ()
    headroom: float = Field(default=0.2, ge=0, lt=1)
    ingest: bool = True                                          # send measured OD rates to the predictor
    decisions_path: str = ""                                     # append one JSON line per TE step here


STITCH_KINDS = ("direct", "segment", "bandwidth")


class StitchRuleConfig(_Strict):
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


class PredictedStitchConfig(_Strict):
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


class StitchingConfig(_Strict):
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


QOS_MAX_RANK = 99           # ranks 0..99; apps.qos turns a rank into an OpenFlow priority


def _key_error(loc: tuple, message: str) -> ValidationError:
    """A validation error located at ``loc`` under the model being validated, so the
    reported key is the one that is wrong (``qos.classes.1.dscp.0``), not its section."""
    return ValidationError.from_exception_data("qos", [InitErrorDetails(
        type=PydanticCustomError("value_error", "{message}", {"message": message}), loc=loc, input=None)])


class QosClassConfig(_Strict):
    """One QoS class: the DSCP values that select it, its rank, its meter."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$")
    dscp: tuple[Annotated[int, Field(ge=0, le=63)], ...] = ()    # DiffServ code points (0..63)
    rank: int = Field(ge=0, le=QOS_MAX_RANK)                     # 0 = most important
    rate_mbps: float | None = Field(default=None, gt=0)          # ingress meter per switch; None: unmetered
    # Also takes IPv4 traffic whose DSCP no class lists (at most one class).
    default: bool = False

    @model_validator(mode="after")
    def _selects_something(self) -> "QosClassConfig":
        if not self.dscp and not self.default:
            raise _key_error(("dscp",), "a class needs at least one DSCP value unless it is the default")
        return self


class QosConfig(_Strict):
    """QoS classes (``apps.qos.app:provider`` in controller.providers)."""

    classes: tuple[QosClassConfig, ...] = ()
    burst_s: float = Field(default=0.1, gt=0, le=10)             # meter bucket depth, seconds of the rate

    @model_validator(mode="after")
    def _consistent(self) -> "QosConfig":
        names: dict[str, int] = {}
        owner: dict[int, int] = {}
        default = None
        for i, cls in enumerate(self.classes):
            if cls.name in names:
                raise _key_error(("classes", i, "name"), f"duplicate class name {cls.name!r} "
                                                         f"(also classes.{names[cls.name]})")
            names[cls.name] = i
            for j, dscp in enumerate(cls.dscp):
                if dscp in owner:
                    other = owner[dscp]
                    where = "listed twice in this class" if other == i else \
                        f"already in class {self.classes[other].name!r} (classes.{other})"
                    raise _key_error(("classes", i, "dscp", j), f"DSCP {dscp} is {where}")
                owner[dscp] = i
            if cls.default:
                if default is not None:
                    raise _key_error(("classes", i, "default"), f"only one class may be the default; "
                                                                f"classes.{default} already is")
                default = i
        return self


class SwitchMeta(_Strict):
    dp_id: int = Field(ge=1, lt=2**64)
    name: str = Field(min_length=1, max_length=64)
    site: str | None = None


class LinkMeta(_Strict):
    a: int = Field(ge=1, lt=2**64, description="dp_id of one end")
    b: int = Field(ge=1, lt=2**64, description="dp_id of the other end")
    capacity_mbps: float = Field(gt=0, description="capacity in each direction")


class TopologyMeta(_Strict):
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


class Config(_Strict):
    controller: ControllerSection = ControllerSection()
    topology: TopologyMeta = TopologyMeta()
    slices: SlicesConfig = SlicesConfig()
    te: TeConfig = TeConfig()
    stitching: StitchingConfig = StitchingConfig()
    qos: QosConfig = QosConfig()


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
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"{source}: {_format_errors(err)}") from None


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    return parse(text, str(path))


def dump(config: Config) -> str:
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)
