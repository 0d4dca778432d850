"""The peering app: sessions, routes, plan and steering, and the loops that keep them.

Two loops, each in a thread of its own:

- **The speaker's events** (``_watch``, in ``speaker.SpeakerLink``): GoBGP's peer
  states and every received route (``apps.peering.gobgp``). Routes go into the
  ``Rib``; a peer's state moves its ``Session``. A session lost while it carried
  traffic fails its groups over at once (the switch already did, on a link-down:
  the fast-failover group), logged and counted with its cause. When GoBGP cannot be
  reached, the app reports degraded, the last plan holds (the switch keeps
  steering), and on its return the sessions wanted are configured again and every
  neighbour's routes re-read.
- **The plan** (``step``, every ``interval_s`` on the app clock's grid): each prefix
  group's demand over the last interval from its fast-failover group's counters,
  sent to the predictor as ``peering:<group>``; forecasts at ``horizons_s`` (median
  and ``quantile``); the scheme's decision (``planner``): the exit of every group,
  which sessions to request or withdraw, each with the numbers behind it; then the
  sessions are moved, the slices sized, and the switch resynced.

What a user sees: ``GetPlan``/``ListCandidates``/``ListPeerings``/``WatchPeering``
(``api``), Prometheus families (``metric_families``), a log line per decision and
``decisions_path`` (JSON lines) when set; ``scores`` makes the candidate scores and
the metric families. Nothing is lost across a restart: sessions,
overrides, the plan, group numbers and the billing window's transit samples are in
``store_path``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable


from apps.peering import SPEC, dataplane, planner, scores
from apps.peering.billing import p95
from apps.peering.config import NeighbourConfig, PeeringConfig
from apps.peering.gobgp import GoBgp, GoBgpError
from apps.peering.rib import PrefixGroup, Rib
from apps.peering.speaker import SpeakerLink
from apps.peering.sessions import Session, SessionEvent, Sla, step
from apps.peering.store import PeeringStore, PeeringStoreError
from apps.slices.model import PriorityClass
from controller.appbase import App, CoreView
from controller.appkit import Basis
from controller.config import ClockConfig
from controller.desired import Desired
from controller.events import EventBus
from controller.stepper import GridStepper

LOG = logging.getLogger(__name__)

SERIES_PREFIX = "peering:"
ROUTE_BATCH_S = 0.2  # route updates gathered for this long before one resync
DECISIONS_KEPT = 500
MBIT = 1e6 / 8  # bytes per second in one Mbit/s


class PeeringError(Exception):
    """Base of the peering API's errors; the message names the field or neighbour."""


class InvalidRequest(PeeringError, ValueError):
    """A request field is unusable (INVALID_ARGUMENT)."""


class UnknownNeighbour(PeeringError, LookupError):
    """No neighbour of that name is configured (NOT_FOUND)."""


class Refused(PeeringError):
    """The request is valid but the state cannot carry it (FAILED_PRECONDITION)."""


@dataclass(frozen=True)
class DecisionRecord:
    kind: str  # the bus kind is "DECISION" (or "FAILOVER"); this says what
    time: float  # app clock
    target: str
    detail: str
    numbers: dict = field(default_factory=dict)
    event: str = "DECISION"

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Plane:
    """What the edge switch should hold, as last published: routes and slice rates."""

    routes: tuple[dataplane.GroupRoute, ...]
    slices: dict[str, int]  # peer -> slice kbit/s

    def __hash__(self) -> int:
        return hash(self.routes)


@dataclass
class _GroupCounter:
    bytes: int = 0
    time: float = 0.0  # wall time of the reading
    step_bytes: int | None = None  # at the last step
    step_time: float = 0.0
    rate_mbps: float = 0.0  # mean over the last step


class PeeringManager(SpeakerLink, App):
    name = SPEC.name

    def __init__(
        self,
        view: CoreView,
        resync: Callable[[], None],
        settings: PeeringConfig,
        speaker: GoBgp | None = None,
        predictor=None,
        store: PeeringStore | None = None,
        clock: ClockConfig | None = None,
        wall: Callable[[], float] = time.time,
    ):
        super().__init__(view, resync)
        self.settings = settings
        self.speaker = speaker
        self.predictor = predictor
        self.store = store
        self.clock = clock or ClockConfig()
        self.wall = wall
        self.neighbours: dict[str, NeighbourConfig] = {n.name: n for n in settings.neighbours}
        self.index = {n.name: i + 1 for i, n in enumerate(settings.neighbours)}  # config order: stable
        self.rib = Rib(
            {n.address: n.name for n in settings.neighbours}, {n.name: n.asn for n in settings.neighbours}
        )
        self.scheme = make_scheme(settings)
        self._withdrawable: dict[str, float] = {}  # the reactive scheme's memo between decisions
        self._last: tuple[dict, dict] = ({}, {})  # the last step's measurements and forecasts
        self._replan_timer: threading.Timer | None = None
        self._resync_timer: threading.Timer | None = None  # the route batch's one resync
        self._timer_lock = threading.Lock()
        self._started = False  # start() ran: background work allowed
        self.bus = EventBus(describe=lambda e: f"peering {e.kind} {getattr(e, 'name', '')}")
        self.lock = threading.RLock()
        self.sessions: dict[str, Session] = {n: Session(n) for n in self.neighbours}
        self.assignment: dict[str, str] = {}  # group -> exit, in force
        self.intended: dict[str, str] = {}  # group -> exit, as the last plan wants it
        self.moved_at: dict[str, float] = {}  # group -> app clock of its last move
        self.numbers: dict[str, int] = {}  # group -> stable number (its OpenFlow group)
        self.known_reach: dict[str, dict[str, int]] = {}  # neighbour -> origin AS -> AS-path length
        self.transit_samples: list[tuple[float, float]] = []  # (app clock, Mbit/s), billing window
        self.decisions: deque[DecisionRecord] = deque(maxlen=DECISIONS_KEPT)
        self.candidates: list[dict] = []
        self.forecast_mbps: dict[str, float] = {}
        self.plan_time = 0.0
        self.degraded = ""  # why, while the speaker is unreachable
        self.failovers: dict[tuple[str, str], int] = {}
        self.decision_counts: dict[str, int] = {}
        self._counters: dict[int, _GroupCounter] = {}
        self._counter_lock = threading.Lock()
        self._ingested: set[str] = set()  # groups whose series the predictor has
        self._plane = _Plane((), {})
        self._rib_loaded = False  # the speaker's routes read since start
        self._outer_resync = resync
        self.resync = self._publish_and_resync
        self._built: tuple[tuple, Desired] = ((), Desired())
        self._basis = Basis(
            LOG, "peering", f"forecasts up to {max(settings.horizons_s):g} s ahead at q{settings.quantile:g}"
        )
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._stream = None
        self._steps = GridStepper(
            "peering-steps",
            self.clock,
            settings.interval_s,
            self.step,
            wall,
            on_error=lambda: self.view.count("peering_step_errors"),
        )
        self._decisions_file = open(settings.decisions_path, "a") if settings.decisions_path else None
        self._load()
        self._publish()

    # ---- persistence ----------------------------------------------------------------------

    def _load(self) -> None:
        if self.store is None:
            return
        for data in self.store.get("sessions", []):
            if data.get("name") in self.sessions:
                self.sessions[data["name"]] = Session.from_json(data)
        plan = self.store.get("plan", {})
        self.assignment = {g: e for g, e in plan.get("assignment", {}).items() if e in self.neighbours}
        self.moved_at = dict(plan.get("moved_at", {}))
        self.numbers = {g: int(n) for g, n in plan.get("numbers", {}).items()}
        self.known_reach = {
            n: dict(r) for n, r in self.store.get("reach", {}).items() if n in self.neighbours
        }
        plane = self.store.get("plane", {})
        if plane.get("routes"):
            self._plane = _Plane(
                tuple(dataplane.GroupRoute(int(n), tuple(p), tuple(e)) for n, p, e in plane["routes"]),
                {k: int(v) for k, v in plane.get("slices", {}).items()},
            )
        self.transit_samples = [tuple(s) for s in self.store.get("transit", [])]
        for d in self.store.decisions(DECISIONS_KEPT):
            self.decisions.append(
                DecisionRecord(
                    d["kind"],
                    d["time"],
                    d["target"],
                    d["detail"],
                    d.get("numbers", {}),
                    d.get("event", "DECISION"),
                )
            )
        restored = [
            f"{s.name} {s.state}" + (f" (override {s.override})" if s.override != "none" else "")
            for s in self.sessions.values()
            if s.state != "CANDIDATE" or s.override != "none"
        ]
        if restored or self.assignment:
            LOG.info(
                "peering: restored %d session(s) [%s], a plan of %d group(s)",
                len(restored),
                ", ".join(restored),
                len(self.assignment),
            )

    def _save(self) -> None:
        if self.store is None:
            return
        try:
            self.store.put("sessions", [s.as_json() for s in self.sessions.values()])
            self.store.put(
                "plan", {"assignment": self.assignment, "moved_at": self.moved_at, "numbers": self.numbers}
            )
            self.store.put("transit", self.transit_samples)
            self.store.put("reach", self.known_reach)
            plane = self._plane
            self.store.put(
                "plane",
                {
                    "routes": [[r.number, list(r.prefixes), list(r.exits)] for r in plane.routes],
                    "slices": plane.slices,
                },
            )
        except PeeringStoreError as err:
            self.view.count("peering_store_errors")
            LOG.error("peering: %s", err)

    # ---- the data plane --------------------------------------------------------------------

    def edge_dp(self) -> int | None:
        spec = self.settings.edge_switch
        if not spec:
            return None
        try:
            return int(spec, 0)
        except ValueError:
            return next((sw.dp_id for sw in self.view.config.topology.switches if sw.name == spec), None)

    def exit_ports(self, plane: "_Plane | None" = None) -> list[dataplane.ExitPort]:
        """The exits whose neighbour is known on the edge switch (learned as a host)."""
        plane = plane or self._plane
        out = []
        edge = self.edge_dp()
        for name, n in self.neighbours.items():
            host = self.view.host_by_ip(n.address)
            if host is None or (edge is not None and host.dp_id != edge):
                continue
            kbps = plane.slices.get(name, 0)
            dscp = PriorityClass(n.priority).dscp if kbps else None
            out.append(dataplane.ExitPort(name, self.index[name], host.mac, host.port_no, kbps, dscp))
        return out

    def edge_of_exits(self) -> int | None:
        edge = self.edge_dp()
        if edge is not None:
            return edge
        for n in self.neighbours.values():
            host = self.view.host_by_ip(n.address)
            if host is not None:
                return host.dp_id
        return None

    def desired(self, dp_id: int, now: float) -> Desired:
        # Runs under the core's lock: it reads the published plane only, never self.lock
        # (the app holds its lock while it calls the core; the other order would deadlock).
        if dp_id != self.edge_of_exits():
            return Desired()
        plane = self._plane
        ports = self.exit_ports(plane)
        key = (tuple(ports), plane.routes)
        built = self._built
        if built[0] != key:
            built = self._built = (
                key,
                dataplane.switch_entries(self.settings.router_mac, ports, plane.routes),
            )
        return built[1]

    def _publish(self) -> None:
        """Make what the switch should hold visible to ``desired`` (one reference swap).
        Until the speaker's routes have been read once, a plane restored from the store
        stands (a restarted controller must not empty the switch while it reconnects)."""
        with self.lock:
            if not self._rib_loaded and self._plane.routes:
                return
            slices = {}
            if self.settings.slices:
                slices = {
                    name: int(self._slice_mbps(name) * 1000)
                    for name, n in self.neighbours.items()
                    if n.kind == "peer" and self.sessions[name].established
                }
            self._plane = _Plane(tuple(self._routes()), slices)

    def _publish_and_resync(self) -> None:
        self._publish()
        self._outer_resync()

    def _routes(self) -> list[dataplane.GroupRoute]:
        out = []
        for group in self.rib.groups():
            exits = self.exit_order(group)
            if exits:
                out.append(dataplane.GroupRoute(self._number(group.name), group.prefixes, tuple(exits)))
        return out

    def _number(self, group: str) -> int:
        number = self.numbers.get(group)
        if number is None:
            number = self.numbers[group] = max(self.numbers.values(), default=0) + 1
        return number

    def exit_order(self, group: PrefixGroup) -> list[str]:
        """The group's exits, failover order: its planned exit, then transit, then the
        other established exits in reach by cost; only established sessions."""
        up = [e for e in group.reach if self.sessions[e].established]
        if not up:
            return []
        first = self.assignment.get(group.name)
        if first not in up:
            first = self.best_path(group, up)
        rest = sorted(
            (e for e in up if e != first),
            key=lambda e: (self.neighbours[e].kind != "transit", self.neighbours[e].cost_per_mbps, e),
        )
        return [first, *rest]

    @staticmethod
    def best_path(group: PrefixGroup, up: list[str]) -> str:
        """BGP's own choice among ``up``: shortest AS path, then the lowest name."""
        return min(up, key=lambda e: (group.reach[e], e))

    def claims(self, ip: str) -> str | None:
        return self.settings.router_mac if ip == self.settings.gateway_ip else None

    # ---- counters ------------------------------------------------------------------------

    def group_stats(self, dp_id: int, stats: list, now: float) -> None:
        with self._counter_lock:  # called under the core's lock: never self.lock here
            for stat in stats:
                c = self._counters.setdefault(stat.group_id, _GroupCounter())
                c.bytes, c.time = int(stat.byte_count), now

    def _measure(self, now: float) -> tuple[dict[str, float], dict[str, float]]:
        """(fresh, known): ``fresh`` holds each group's mean rate (Mbit/s) since the last
        step, from its group's bytes, for the groups with a reading then and now (a
        counter that went back, the group re-created, counts from zero); ``known`` adds
        the last rate of the others. Only fresh rates go to the predictor: a group that
        has no reading yet (just started, just created) has no rate, not a zero one."""
        fresh, known = {}, {}
        with self.lock:
            numbers = [(group.name, self._number(group.name)) for group in self.rib.groups()]
        with self._counter_lock:
            for name, number in numbers:
                c = self._counters.get(dataplane.group_id(number))
                if c is None:
                    continue
                if c.step_bytes is not None and c.time > c.step_time:
                    delta = c.bytes - c.step_bytes if c.bytes >= c.step_bytes else c.bytes
                    c.rate_mbps = delta / (c.time - c.step_time) / MBIT
                    fresh[name] = c.rate_mbps
                if c.time > c.step_time or c.step_bytes is None:
                    c.step_bytes, c.step_time = c.bytes, c.time
                if c.step_bytes is not None and (name in fresh or c.rate_mbps):
                    known[name] = c.rate_mbps
        return fresh, known

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._started = True
        with self.lock:
            now = self.clock.virtual(self.wall())
            for name, n in self.neighbours.items():
                s = self.sessions[name]
                if (
                    s.override == "up"
                    or (n.always or self.settings.scheme == "plain_bgp")
                    and s.override != "down"
                ):
                    if not s.wanted:
                        self._request(name, now, "always up" if n.always else "plain BGP: every session up")
        if self.speaker is not None:
            self._watcher = threading.Thread(target=self._watch, name="peering-bgp", daemon=True)
            self._watcher.start()
        self._steps.start()

    def stopping(self) -> None:
        self._stop.set()
        self._steps.halt()
        stream = self._stream
        if stream is not None:
            try:
                stream.cancel()
            except Exception:  # noqa: BLE001 - a stream already gone
                pass
        self.bus.close()

    def close(self) -> None:
        self.stopping()
        self._steps.stop(timeout_s=5.0)
        if self._watcher is not None:
            self._watcher.join(timeout=5.0)
        with self.lock:
            self._save()
        if self.store is not None:
            self.store.close()
        if self._decisions_file is not None:
            self._decisions_file.close()
        if self.speaker is not None:
            self.speaker.close()

    # ---- sessions --------------------------------------------------------------------------

    def _session_event(self, event: SessionEvent | None) -> None:
        if event is None:
            return
        LOG.info("peering: session %s %s -> %s: %s", event.name, event.old, event.new, event.detail)
        self.view.count(f"peering_session_{event.new.lower()}")
        self.bus.publish([event])
        if self._decisions_file is not None:
            numbers = {"committed_mbps": self.sessions[event.name].sla.committed_mbps}
            if event.new in ("REQUESTED", "ESTABLISHED", "DOWN", "CANDIDATE"):
                numbers[event.new.lower() if event.new != "REQUESTED" else "requested"] = 1.0
            self._write_line(
                {
                    "kind": "session",
                    "time": event.time,
                    "target": event.name,
                    "detail": f"{event.old} -> {event.new}: {event.detail}",
                    "numbers": numbers,
                    "event": "SESSION",
                }
            )
        self._save()

    def _write_line(self, body: dict) -> None:
        self._decisions_file.write(json.dumps({**body, "wall": self.wall()}) + "\n")
        self._decisions_file.flush()

    def _request(self, name: str, now: float, why: str, committed_mbps: float = 0.0) -> None:
        """Ask for a session: the peering request (its SLA), then the speaker's peer."""
        n, s = self.neighbours[name], self.sessions[name]
        s.sla = Sla(
            committed_mbps=round(committed_mbps, 3), max_latency_ms=n.max_latency_ms, requested_at=now
        )
        self._session_event(
            step(
                s,
                "REQUESTED",
                f"{why}; asks {committed_mbps:.2f} Mbit/s committed"
                + (f", at most {n.max_latency_ms:g} ms" if n.max_latency_ms else ""),
                now,
            )
        )
        self._configure_due(now)

    def _configure_due(self, now: float) -> None:
        """Requests whose provisioning time has passed become configured peers."""
        for name, s in self.sessions.items():
            if s.state != "REQUESTED" or now < s.sla.requested_at + self.neighbours[name].provision_s:
                continue
            if self.speaker is None:
                continue
            try:
                self.speaker.add_peer(self._peer_spec(name))
            except GoBgpError as err:
                self._set_degraded(str(err))
                continue
            self._session_event(step(s, "CONNECTING", "configured in the BGP speaker", now))

    def _release_session(self, name: str, now: float, why: str) -> None:
        s = self.sessions[name]
        if s.state == "CANDIDATE":
            return
        self._session_event(step(s, "WITHDRAWING", why, now))
        self.assignment = {g: e for g, e in self.assignment.items() if e != name}
        self.rib.drop(name)
        self.resync()  # traffic off first (make before break), then the session
        if self.speaker is not None:
            try:
                self.speaker.delete_peer(self.neighbours[name].address)
            except GoBgpError as err:
                self._set_degraded(str(err))
        self._session_event(step(s, "CANDIDATE", why, now))

    # ---- the plan -------------------------------------------------------------------------

    def step(self, now: float | None = None):
        now = self.wall() if now is None else now
        if now < self.clock.real_origin_s or self._steps.stopped:
            return None
        vnow = self.clock.virtual(now)
        fresh, measured = self._measure(now)
        forecasts = self._forecast(fresh, vnow)
        with self.lock:
            self._last = (measured, forecasts)
            groups = self.rib.groups()
            transit = sum(
                measured.get(g.name, 0.0)
                for g in groups
                if self.neighbours[self._exit_of(g)].kind == "transit"
            )
            self._sample_transit(vnow, transit)
        return self.plan(vnow, "the plan")

    def plan(self, vnow: float, why: str):
        """Decide on the last measurements and forecasts, apply, resync if anything changed."""
        with self.lock:
            measured, forecasts = self._last
            self._configure_due(vnow)
            groups = self._planner_groups(self.rib.groups(), measured, forecasts)
            decision = self.scheme.decide(vnow, groups, self._planner_exits(), self._planner_state())
            self._withdrawable = dict(decision.withdrawable_since)
            self.plan_time = vnow
            changed = self._apply(decision, vnow, why)
            self.candidates = scores.candidate_scores(self, groups, decision)
            self._save()
        if changed:
            self.resync()
        return decision

    def _routes_changed(self, delay_s: float = ROUTE_BATCH_S) -> None:
        """Routes arrive an UPDATE at a time (about 200 prefixes each, thousands a second
        from a neighbour that just came up): gather them, then steer and resync once
        (regrouping the RIB per UPDATE made a 10,000-prefix table quadratic). Without
        start() (tests), at once."""
        if not self._started:
            self._steer_and_resync()
            return
        with self._timer_lock:
            if self._resync_timer is not None and self._resync_timer.is_alive():
                return
            self._resync_timer = threading.Timer(delay_s, self._steer_and_resync)
            self._resync_timer.daemon = True
            self._resync_timer.start()

    def _steer_and_resync(self) -> None:
        """Groups onto their intended exits where the routes now allow, then the switch."""
        if self._stop.is_set():
            return
        with self.lock:
            if self.intended:
                self._steer(self.clock.virtual(self.wall()), "routes learned")
        self.resync()

    def _replan_soon(self, delay_s: float = 0.3) -> None:
        """A session came up and its routes are arriving: plan again once they have (the
        steering should not wait for the next step)."""
        if not self._started or (self._replan_timer is not None and self._replan_timer.is_alive()):
            return

        def run() -> None:
            if not self._stop.is_set():
                try:
                    self.plan(self.clock.virtual(self.wall()), "routes learned")
                except Exception:  # noqa: BLE001 - the next step plans anyway
                    LOG.exception("peering: re-plan after routes learned failed")

        self._replan_timer = threading.Timer(delay_s, run)
        self._replan_timer.daemon = True
        self._replan_timer.start()

    def _exit_of(self, group: PrefixGroup) -> str:
        order = self.exit_order(group)
        return order[0] if order else next(iter(group.reach))

    def _sample_transit(self, vnow: float, mbps: float) -> None:
        self.transit_samples.append((vnow, round(mbps, 4)))
        horizon = vnow - self.settings.billing_window_s
        while self.transit_samples and self.transit_samples[0][0] < horizon:
            self.transit_samples.pop(0)

    def _forecast(
        self, measured: dict[str, float], vnow: float
    ) -> dict[str, dict[float, dict[float, float]]]:
        """Send the interval's demand, then ask for every horizon; {} on any failure (the
        planner then works on measurements, and the basis says so)."""
        with self.lock:
            groups = [g.name for g in self.rib.groups()]
        if self.predictor is None or self.settings.scheme != "predictive" or not groups:
            if self.settings.scheme == "predictive":
                self._basis.on_measurements(
                    "no predictor configured (controller.predictor.address)"
                    if self.predictor is None
                    else "no prefix group yet"
                )
            return {}
        series = {g: SERIES_PREFIX + g for g in groups}
        try:
            if measured:
                self.predictor.ingest(
                    [(series[g], vnow, v) for g, v in sorted(measured.items()) if g in series],
                    labels={"kind": "peering"},
                )
                self._ingested |= set(measured)
            # Only series the predictor has (a forecast of an unknown one fails the call).
            series = {g: sid for g, sid in series.items() if g in self._ingested}
            if not series:
                self._basis.on_measurements("no prefix group measured yet")
                return {}
            q = self.settings.quantile
            response = self.predictor.forecast(
                sorted(series.values()), list(self.settings.horizons_s), [0.5, q]
            )
        except Exception as err:  # noqa: BLE001 - any predictor failure falls back to measurements
            self._basis.on_measurements(f"predictor failed: {err}")
            return {}
        out: dict[str, dict[float, dict[float, float]]] = {}
        back = {v: g for g, v in series.items()}
        degraded = []
        for f in response.forecasts:
            group = back.get(f.series_id)
            if group is None:
                continue
            if f.degraded:
                degraded.append(f.series_id)
            out.setdefault(group, {})[f.horizon_s] = {qv.quantile: max(qv.value, 0.0) for qv in f.quantiles}
        if degraded and len(degraded) == len(response.forecasts):
            self._basis.on_measurements(
                f"the predictor has no trained model for the groups ({degraded[0]} ...)"
            )
        else:
            self._basis.on_forecasts()
        return out

    def expected_reach(self, group: PrefixGroup) -> dict[str, int]:
        """What the planner may count on for a group: the routes learned, plus, for a
        neighbour without a session, what it registers or announced when it last had
        one (an AS path of two for a registered origin, its customer)."""
        reach = dict(group.reach)
        for name, n in self.neighbours.items():
            if name in reach or self.sessions[name].established:
                continue
            known = self.known_reach.get(name, {}).get(str(group.origin))
            if known is not None:
                reach[name] = int(known)
            elif group.origin in n.registered_origins:
                reach[name] = 2
        return reach

    def _remember_reach(self) -> None:
        """Each established neighbour's origins and path lengths, for when it is down."""
        for name, s in self.sessions.items():
            if s.established:
                seen = {str(g.origin): n for g in self.rib.groups() for e, n in g.reach.items() if e == name}
                if seen:
                    self.known_reach[name] = seen

    def _planner_groups(self, groups: list[PrefixGroup], measured: dict[str, float], forecasts) -> list:
        usable = {e.name for e in self._planner_exits()}
        self._remember_reach()
        out = []
        for g in groups:
            fc = forecasts.get(g.name, {})
            out.append(
                planner.Group(
                    name=g.name,
                    prefixes=len(g.prefixes),
                    reach={e: n for e, n in self.expected_reach(g).items() if e in usable},
                    measured_mbps=max(0.0, measured.get(g.name, 0.0)),
                    forecast=fc,
                )
            )
            if fc:
                self.forecast_mbps[g.name] = max(v.get(self.settings.quantile, 0.0) for v in fc.values())
        return out

    def _planner_exits(self) -> list:
        return [
            planner.Exit(
                name=n.name,
                kind=n.kind,
                capacity_mbps=n.capacity_mbps,
                cost_per_mbps=n.cost_per_mbps,
                hour_cost=n.hour_cost,
                latency_ms=n.latency_ms,
                lead_s=n.lead_s,
            )
            for n in self.neighbours.values()
            if self.sessions[n.name].state != "TORN_DOWN" and self.sessions[n.name].override != "down"
        ]

    def _planner_state(self) -> planner.State:
        transit = [n for n, c in self.neighbours.items() if c.kind == "transit"]
        return planner.State(
            established=frozenset(n for n, s in self.sessions.items() if s.established),
            pending={
                n: s.sla.requested_at
                for n, s in self.sessions.items()
                if s.state in ("REQUESTED", "CONNECTING", "DOWN")
            },
            assignment=dict(self.assignment),
            moved_at=dict(self.moved_at),
            session_changed_at={n: s.since for n, s in self.sessions.items()},
            transit_history_mbps={transit[0]: [v for _, v in self.transit_samples]} if transit else {},
            withdrawable_since=dict(self._withdrawable),
        )

    def _apply(self, decision, vnow: float, why: str) -> bool:
        for name in decision.bring_up:
            s = self.sessions.get(name)
            if s is None or s.wanted or s.override == "down" or s.state == "TORN_DOWN":
                continue
            numbers = next((r.numbers for r in decision.reasons_for(name) if r.action == "bring_up"), {})
            committed = numbers.get("moved_mbps", numbers.get("reached_mbps", 0.0))
            self._request(name, vnow, "the plan asks for it", committed)
        self.intended = dict(decision.assignment)
        changed = self._steer(vnow, why)
        for name in sorted(decision.withdraw):
            s = self.sessions.get(name)
            if s is None or not s.wanted or s.override == "up" or self.neighbours[name].always:
                continue
            self._release_session(name, vnow, "the plan no longer needs it")
            changed = True
        measured, _ = self._last
        for reason in decision.reasons:
            if reason.action in ("place",):
                continue
            numbers = dict(reason.numbers)
            if reason.action == "withdraw":
                # What the peer carries as measured and as forecast, beside the plan's view.
                on_it = [g for g, e in self.assignment.items() if e == reason.target]
                numbers["measured_on_it_mbps"] = round(sum(measured.get(g, 0.0) for g in on_it), 4)
                numbers["forecast_on_it_mbps"] = round(sum(self.forecast_mbps.get(g, 0.0) for g in on_it), 4)
                numbers["groups_on_it"] = len(on_it)
            self._decide_log(reason.action, vnow, reason.target, reason.text, numbers)
        return changed

    def _steer(self, vnow: float, why: str) -> bool:
        """Put every group on its intended exit where that exit is established and
        announces the group; one "steer" record per exit that gained groups."""
        reach = {g.name: g.reach for g in self.rib.groups()}
        gained: dict[str, list[str]] = {}
        for group, exit_ in sorted(self.intended.items()):
            if not self.sessions.get(exit_, Session("")).established or exit_ not in reach.get(group, {}):
                continue
            if self.assignment.get(group) != exit_:
                if group in self.assignment:  # a move; a first placement starts no dwell
                    self.moved_at[group] = vnow
                self.assignment[group] = exit_
                gained.setdefault(exit_, []).append(group)
        for exit_, groups in sorted(gained.items()):
            mbps = sum(self.forecast_mbps.get(g, 0.0) for g in groups)
            self._decide_log(
                "steer",
                vnow,
                exit_,
                f"{why}: {len(groups)} group(s) onto {exit_} "
                f"({', '.join(groups[:6])}{'...' if len(groups) > 6 else ''})",
                {"groups": len(groups), "forecast_mbps": round(mbps, 3)},
            )
        return bool(gained)

    def _slice_mbps(self, name: str) -> float:
        """A peering's slice: what the plan puts on it at the upper quantile, plus the
        margin, within its capacity (at least 1 Mbit/s)."""
        planned = sum(self.forecast_mbps.get(g, 0.0) for g, e in self.assignment.items() if e == name)
        cap = self.neighbours[name].capacity_mbps
        return round(max(1.0, min(cap, planned * (1 + self.settings.slice_margin) if planned else cap)), 1)

    def _decide_log(
        self, kind: str, vnow: float, target: str, detail: str, numbers: dict, event: str = "DECISION"
    ) -> None:
        record = DecisionRecord(kind, vnow, target, detail, {k: float(v) for k, v in numbers.items()}, event)
        self.decisions.append(record)
        self.decision_counts[kind] = self.decision_counts.get(kind, 0) + 1
        LOG.info("peering: %s %s: %s", kind, target, detail)
        self.bus.publish([record])
        if self.store is not None:
            try:
                self.store.add_decision(record.as_json())
            except PeeringStoreError as err:
                LOG.error("peering: %s", err)
        if self._decisions_file is not None:
            self._write_line(record.as_json())

    # ---- operator overrides (the API) -------------------------------------------------------

    def _neighbour(self, name: str) -> NeighbourConfig:
        if not name:
            raise InvalidRequest("name: required (a neighbour's name in peering.neighbours)")
        n = self.neighbours.get(name)
        if n is None:
            raise UnknownNeighbour(
                f"neighbour {name!r}: not configured (known: {', '.join(sorted(self.neighbours))})"
            )
        return n

    def establish(self, name: str) -> Session:
        self._neighbour(name)
        with self.lock:
            vnow = self.clock.virtual(self.wall())
            s = self.sessions[name]
            s.override = "up"
            if s.state == "TORN_DOWN":
                self._session_event(step(s, "CANDIDATE", "operator asked again after a teardown", vnow))
            if not s.wanted:
                self._request(name, vnow, "operator override: establish")
            self._decide_log("override", vnow, name, "operator: establish and keep up", {})
            self._save()
            return s

    def withdraw(self, name: str) -> Session:
        n = self._neighbour(name)
        with self.lock:
            if n.kind == "transit" and not any(
                o.kind == "transit" and o.name != name and self.sessions[o.name].wanted
                for o in self.neighbours.values()
            ):
                raise Refused(
                    f"neighbour {name!r}: the only transit session; withdrawing it would leave "
                    f"destinations without a route"
                )
            vnow = self.clock.virtual(self.wall())
            s = self.sessions[name]
            s.override = "down"
            self._decide_log("override", vnow, name, "operator: withdraw and keep down", {})
            self._release_session(name, vnow, "operator override: withdraw")
            self._save()
            return s

    def release(self, name: str) -> Session:
        self._neighbour(name)
        with self.lock:
            s = self.sessions[name]
            vnow = self.clock.virtual(self.wall())
            s.override = "none"
            if s.state == "TORN_DOWN":
                self._session_event(step(s, "CANDIDATE", "released after a teardown", vnow))
            self._decide_log("override", vnow, name, "operator: released to the planner", {})
            self._save()
            return s

    # ---- reading ----------------------------------------------------------------------------

    def group_rate(self, group: str) -> float:
        """A prefix group's rate over the last step (0 before its first reading)."""
        c = self._counters.get(dataplane.group_id(self.numbers.get(group, 0)))
        return c.rate_mbps if c is not None else 0.0

    def exit_rates(self) -> dict[str, float]:
        """Each exit's rate: the groups steered to it, at the last step."""
        out = {n: 0.0 for n in self.neighbours}
        with self.lock:
            for group in self.rib.groups():
                order = self.exit_order(group)
                if order:
                    out[order[0]] += self.group_rate(group.name)
        return out

    def transit_p95(self) -> float:
        return p95([v for _, v in self.transit_samples]) if self.transit_samples else 0.0

    def metric_families(self) -> list:
        return scores.metric_families(self)

    def basis(self):
        return self._basis.mode if self.settings.scheme == "predictive" else "reactive"


def make_scheme(settings: PeeringConfig):
    """The planner scheme the config names (``planner``)."""
    if settings.scheme == "plain_bgp":
        return planner.BestPath()
    if settings.scheme == "reactive":
        return planner.Reactive(
            detour=settings.detour, restore=settings.restore, min_dwell_s=settings.min_dwell_s
        )
    return planner.Predictive(
        quantile=settings.quantile,
        lookahead_s=max(settings.horizons_s),
        headroom=settings.headroom,
        min_dwell_s=settings.min_dwell_s,
        fit_ahead_s=settings.fit_ahead_s,
        hysteresis=settings.hysteresis,
        interval_s=settings.step_s,
        billing_window_s=settings.billing_window_s,
    )
