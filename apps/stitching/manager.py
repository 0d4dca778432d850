"""The stitching manager: stitches between virtual networks of different sites, from
request (or forecast) to teardown, and what the site switches must hold for them.

    manager.advertise(ad, now)                  # a site's route manager, every few seconds
    record = manager.create(StitchRequest("acme", "segment", a_vnid=100, b_vnid=200))
    manager.delete(record.id)

Create: the policy decides first (``apps.stitching.policy``: deny by default; a
refusal names its rule and changes nothing). Then the negotiation: the sites that
advertise each VNID for the tenant (one each, or the one the request names), and the
underlay planes both are up on with the bandwidth, latency and cost the request can
live with (``Registry.candidates``, bandwidth already promised to other stitches
counted). The best plane wins; the stitch gets a VNI (``vni_base`` + its index) and
is stored before any flow goes out, so a restart keeps it.

States: ESTABLISHING (flows sent, not yet confirmed; an encrypted stitch also waits
for both sites' tunnel ports), ESTABLISHED, DEGRADED (no underlay path right now,
or a site went silent: the flows stay, the state says why). Every step is an event
(``bus``) and a line in the stitch's ``history``.

Adjust: whenever an advertisement changes what a plane offers (a plane down, a site
gone), every stitch on it moves to its best remaining candidate (make before break
is the core's), or becomes DEGRADED until one appears.

Monitor: every stitch's traffic into the tunnel passes a meter at each end
(``meter_stats``): the offered and dropped rates per end, and their sum, its
demand. Terminate: on request, or (``idle_mbps`` > 0) once its demand — forecast
``horizon_s`` ahead when a predictor is connected (the measured demand is sent to
it as series ``stitch:<id>``), else measured — has stayed below ``idle_mbps`` for
``idle_after_s`` (``apps.stitching.demand`` decides, this manager deletes).
Encrypted stitches: the tunnels each site must build come from
``apps.stitching.tunnels``.

Ahead of traffic: ``stitching.predicted`` names VN pairs whose demand someone
forecasts (series ``vnpair:<tenant>:<a>-<b>`` in the predictor); when the forecast
``horizon_s`` ahead reaches the pair's ``open_mbps`` and no stitch joins the pair, one
is created (``open_predicted``), and the idle rule ends it when demand is gone.

Thread safety: ``self._lock`` guards the state; ``resync`` (which takes the core's
lock and calls ``desired``) is only called without it.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable


from apps.stitching import dataplane
from apps.stitching.policy import StitchPolicy, Verdict
from apps.stitching.registry import Advertisement, AdvertisementError, Candidate, Registry
from apps.stitching.demand import StitchDemand, pair_series
from apps.stitching.store import StitchRecord, StitchStore
from apps.stitching.tunnels import TunnelOrder, tunnel_orders
from apps.stitching import SPEC
from apps.stitching.config import STITCH_KINDS, StitchingConfig
from controller.appbase import App, CoreView, Knob, KnobError
from controller.desired import Desired
from controller.events import EventBus
from controller.telemetry import MeterRate, MeterRates

LOG = logging.getLogger(__name__)
KNOB_MAX_MBPS = 100_000.0           # a bandwidth stitch's knob range when no policy rule caps it

HISTORY = 20                    # lifecycle lines kept per stitch
STATES = ("ESTABLISHING", "ESTABLISHED", "DEGRADED")


class StitchError(Exception):
    """Base of the errors a stitching request can meet; each maps to a gRPC code."""


class InvalidStitch(StitchError, ValueError):
    """The request is malformed (INVALID_ARGUMENT)."""


class StitchNotFound(StitchError, LookupError):
    """No such stitch, or no site advertises a VNID (NOT_FOUND)."""


class StitchExists(StitchError):
    """A stitch with that id exists (ALREADY_EXISTS)."""


class StitchRefused(StitchError):
    """The policy refused it (PERMISSION_DENIED); ``verdict.rule`` names the rule."""

    def __init__(self, verdict: Verdict):
        super().__init__(verdict.reason)
        self.verdict = verdict


class NoPath(StitchError):
    """No underlay path meets the request (FAILED_PRECONDITION); the message lists why."""


@dataclass(frozen=True)
class StitchRequest:
    tenant: str
    kind: str
    a_vnid: int
    b_vnid: int
    a_site: str = ""                # "" : the one site advertising the VNID
    b_site: str = ""
    a_host: str = ""                # direct stitches: a host of each VN
    b_host: str = ""
    mbps: float = 0.0               # bandwidth stitches: the rate to reserve
    min_mbps: float = 0.0
    max_rtt_ms: float = 0.0         # 0: no latency requirement
    id: str = ""                    # "" : the manager names it


# One end of a stitch at its last meter reading with a rate: what entered the tunnel there.
EndRates = MeterRate


@dataclass(frozen=True)
class StitchEvent:
    kind: str                       # CREATED, ESTABLISHED, ADJUSTED, DEGRADED, DELETED, SITE_UP, SITE_DOWN
    time: float
    stitch_id: str
    detail: str
    record: StitchRecord | None = None


def _shape(ad: Advertisement) -> tuple:
    """What of an advertisement the switches and the stitches' planes depend on."""
    return (ad.dp_id, ad.hosts, ad.wg_public_key, ad.tunnels,
            tuple((p.plane, p.address, p.up) for p in ad.planes))


def _describe(event: StitchEvent) -> str:
    return f"stitching {event.kind} {event.stitch_id or '-'}: {event.detail}"


class StitchManager(App):
    name = SPEC.name

    def __init__(self, view: CoreView, resync: Callable[[], None], settings: StitchingConfig,
                 store: StitchStore | None = None, clock: Callable[[], float] = time.time):
        super().__init__(view, resync)
        self.settings = settings
        self.store = store
        self.clock = clock
        self.policy = StitchPolicy(settings.policy)
        self.registry = Registry(settings.advert_ttl_s)
        self.bus = EventBus(_describe)
        self.stitches: dict[str, StitchRecord] = {}
        # ESTABLISHING stitches whose flows are sent: what the switches must confirm.
        self._pending: dict[str, dict[int, int]] = {}
        self.demand = StitchDemand(settings)                # idle and predicted decisions
        self._meters = MeterRates()                          # (stitch, site) -> its end's meter
        self.rates: dict[str, dict[str, EndRates]] = {}     # stitch -> site -> its end's rates
        self._lock = threading.RLock()
        if store is not None:
            for record in store.load():
                self.stitches[record.id] = record
            for data in store.load_sites():
                try:
                    self.registry.advertise(Advertisement.from_dict(data), self.clock())
                except (AdvertisementError, KeyError, TypeError) as err:
                    LOG.warning("stitching: a stored advertisement is unusable (%s); waiting for the site",
                                err)
            if self.stitches:
                LOG.info("stitching: %d stitch(es) restored: %s", len(self.stitches),
                         ", ".join(sorted(self.stitches)))

    # ---- route managers ------------------------------------------------------------

    def advertise(self, ad: Advertisement, now: float | None = None) -> None:
        """A site's advertisement (AdvertisementError if it cannot be right)."""
        now = self.clock() if now is None else now
        with self._lock:
            before = self.registry.get(ad.site)
            if self.registry.advertise(ad, now):
                self._event("SITE_UP", "", f"site {ad.site} (dp {ad.dp_id:#x}) advertises "
                                           f"{len(ad.hosts)} host(s) "
                                           f"in VN(s) {sorted({h.vnid for h in ad.hosts})}")
            # Round trips and free bandwidth change every time; only what the switches
            # or the stitches' planes depend on calls for a sync.
            changed = before is None or _shape(before) != _shape(ad)
            self._note_tunnel_errors(ad, now)
            if changed:
                if self.store is not None:
                    self.store.put_site(ad.site, ad.to_dict())
                self._adjust(now)
        if changed:
            self.resync()
            self._await_confirmation()

    def expire(self, now: float | None = None) -> list[str]:
        """Forget sites silent for ``advert_ttl_s``; stitches through them degrade."""
        now = self.clock() if now is None else now
        with self._lock:
            gone = self.registry.expire(now)
            for site in gone:
                self._event("SITE_DOWN", "", f"site {site} silent for over {self.settings.advert_ttl_s:g} s: "
                                             f"its advertisement expired")
            if gone:
                self._adjust(now)
        if gone:
            self.resync()
            self._await_confirmation()
        self._check_confirmations()
        return gone

    def sites(self) -> list[tuple[Advertisement, float]]:
        """Every site's advertisement and when it was last heard."""
        with self._lock:
            return [(ad, self.registry.last_seen(ad.site)) for ad in self.registry.sites()]

    def tunnels_for(self, site: str) -> list[TunnelOrder]:
        """The encrypted tunnels ``site`` must keep (``apps.stitching.tunnels``)."""
        with self._lock:
            return tunnel_orders(site, list(self.stitches.values()), self.registry, self.settings)

    def peer_addresses(self, site: str) -> list[tuple[str, int, str]]:
        """(site, plane, address) of every other site's underlay addresses."""
        with self._lock:
            return [(other.site, p.plane, p.address) for other in self.registry.sites() if other.site != site
                    for p in other.planes]

    # ---- requests ------------------------------------------------------------------

    def query(self, req: StitchRequest) -> tuple[str, str, list[Candidate]]:
        """The sites the request would join and its candidate paths, best first
        (the policy is not consulted: this only says what the network offers)."""
        self._check(req)
        with self._lock:
            a, b = self._locate(req)
            return a, b, self.registry.candidates(a, b, max(req.min_mbps, req.mbps), req.max_rtt_ms or None,
                                                  self._reserved())

    def create(self, req: StitchRequest, why: str = "on request") -> StitchRecord:
        self._check(req)
        verdict = self.policy.check(req.tenant, req.a_vnid, req.b_vnid, req.kind, req.mbps)
        if not verdict.allowed:
            LOG.warning("stitching: %s", verdict.reason)
            raise StitchRefused(verdict)
        now = self.clock()
        with self._lock:
            if req.id and req.id in self.stitches:
                raise StitchExists(f"stitch {req.id!r} exists")
            a, b = self._locate(req)
            for site, host, vnid in ((a, req.a_host, req.a_vnid), (b, req.b_host, req.b_vnid)):
                if host:
                    h = self.registry.host(site, host)
                    if h is None or h.vnid != vnid or h.tenant != req.tenant:
                        raise StitchNotFound(f"host {host!r} is not in VN {vnid} of {req.tenant} "
                                             f"at site {site}")
            need = max(req.min_mbps, req.mbps)
            candidates = self.registry.candidates(a, b, need, req.max_rtt_ms or None, self._reserved())
            if not candidates:
                offered = self.registry.candidates(a, b)
                raise NoPath(f"no underlay path between sites {a} and {b} offers "
                             f"{need:g} Mbit/s" + (f" within {req.max_rtt_ms:g} ms" if req.max_rtt_ms else "")
                             + "; offered: "
                             + ("; ".join(c.describe() for c in offered) or "none (no plane up at both)"))
            index = self._free_index()
            best = candidates[0]
            record = StitchRecord(
                id=req.id or f"st-{index}", tenant=req.tenant, kind=req.kind, a_site=a, a_vnid=req.a_vnid,
                b_site=b, b_vnid=req.b_vnid, a_host=req.a_host, b_host=req.b_host, mbps=req.mbps,
                min_mbps=req.min_mbps, max_rtt_ms=req.max_rtt_ms, encrypted=verdict.encrypt,
                rule=verdict.rule, vni=self.settings.vni_base + index, index=index, plane=best.plane,
                state="ESTABLISHING",
                psk=(secrets.token_hex(24)
                     if verdict.encrypt and self.settings.encryption == "ovs-ipsec" else ""),
                detail="flows sent" if not verdict.encrypt else "waiting for both sites' encrypted tunnel",
                created_at=now, changed_at=now)
            self._step(record, f"created {why}: {verdict.reason}; VNI {record.vni}, {best.describe()}")
            self.stitches[record.id] = record
            self._save(record)
            self._event("CREATED", record.id, f"{req.kind} {a}/VN {req.a_vnid} <-> {b}/VN {req.b_vnid} on "
                                              f"{best.describe()} (rule {verdict.rule}), {why}", record)
        self.resync()
        self._await_confirmation()
        return self.get(record.id)

    def adjust_bandwidth(self, stitch_id: str, mbps: float) -> StitchRecord:
        """A bandwidth stitch's new rate, if the policy and the underlay allow it
        (moving it to another plane if its own cannot carry it); else nothing changes."""
        if not (mbps > 0 and math.isfinite(mbps)):
            raise InvalidStitch(f"bandwidth_mbps: must be a finite number > 0, got {mbps}")
        with self._lock:
            record = self._record(stitch_id)
            if record.kind != "bandwidth":
                raise InvalidStitch(f"bandwidth_mbps: {stitch_id} is a {record.kind} stitch; "
                                    f"only a bandwidth stitch reserves a rate")
            verdict = self.policy.check(record.tenant, record.a_vnid, record.b_vnid, record.kind, mbps)
            if not verdict.allowed:
                raise StitchRefused(verdict)
            need = max(record.min_mbps, mbps)
            candidates = self.registry.candidates(record.a_site, record.b_site, need,
                                                  record.max_rtt_ms or None,
                                                  self._reserved(leave_out=record.id))
            if not candidates:
                raise NoPath(f"no underlay path between sites {record.a_site} and {record.b_site} offers "
                             f"{need:g} Mbit/s besides what other stitches hold; "
                             f"{stitch_id} keeps {record.mbps:g}")
            here = next((c for c in candidates if c.plane == record.plane), candidates[0])
            old, old_plane = record.mbps, record.plane
            record.mbps, record.plane, record.changed_at = mbps, here.plane, self.clock()
            moved = f", moved from plane {old_plane} to {here.describe()}" if here.plane != old_plane else ""
            self._step(record, f"bandwidth {old:g} -> {mbps:g} Mbit/s{moved}")
            self._save(record)
            self._event("ADJUSTED", record.id, f"bandwidth {old:g} -> {mbps:g} Mbit/s{moved}", record)
        self.resync()
        return self.get(stitch_id)

    def confirmed(self, stitch_id: str) -> StitchRecord:
        """The switches confirmed the stitch's flows: ESTABLISHED (unless it still waits
        for an encrypted tunnel or has no path)."""
        with self._lock:
            record = self._record(stitch_id)
            if record.state == "ESTABLISHING" and self._ready(record):
                record.state, record.detail = "ESTABLISHED", "flows confirmed by both sites' switches"
                record.changed_at = self.clock()
                self._step(record, "established")
                self._save(record)
                self._event("ESTABLISHED", record.id, f"VNI {record.vni} on plane {record.plane}", record)
            return replace(record, history=list(record.history))

    def _await_confirmation(self) -> None:
        """After a resync: every ESTABLISHING stitch that is ready waits for the switches
        to confirm what was sent so far (checked by ``expire``'s step). Call without the lock."""
        mark = self.view.sync_mark()
        with self._lock:
            for record in self.stitches.values():
                if record.state == "ESTABLISHING" and record.plane and self._ready(record):
                    self._pending[record.id] = mark

    def _check_confirmations(self) -> None:
        with self._lock:
            pending = list(self._pending.items())
        for stitch_id, mark in pending:
            refused = self.view.refusals(mark)
            if refused:
                # The switches hold the stitch without what they refused: it is not up.
                with self._lock:
                    self._pending.pop(stitch_id, None)
                    record = self.stitches.get(stitch_id)
                    if record is not None and record.state == "ESTABLISHING":
                        why = f"refused by a switch: {'; '.join(refused)}"
                        LOG.error("stitching: %s: %s", stitch_id, why)
                        self._set_state(record, "DEGRADED", why, self.clock())
                continue
            if self.view.unconfirmed(mark):
                continue
            with self._lock:
                self._pending.pop(stitch_id, None)
                if stitch_id in self.stitches:
                    self.confirmed(stitch_id)

    # ---- monitoring and idle termination ---------------------------------------------

    def meter_stats(self, dp_id: int, stats: list, now: float) -> None:
        """Meter counters of a site switch: each stitch end's offered and dropped rates
        (an end keeps its last reading with a rate across a meter's reset)."""
        with self._lock:
            ad = self.registry.by_dp_id(dp_id)
            if ad is None:
                return
            by_meter = {dataplane.meter_id_of(r.index): r.id for r in self.stitches.values()}
            self._meters.update(dp_id, stats, now,
                                lambda mid: (by_meter[mid], ad.site) if mid in by_meter else None)
            for (stitch_id, site), rate in self._meters.rates(now).items():
                if rate.measured and rate.time == now and stitch_id in self.stitches:
                    self.rates.setdefault(stitch_id, {})[site] = rate

    def rtt_ms(self, stitch_id: str) -> float | None:
        """The round trip measured between the stitch's sites on its plane."""
        with self._lock:
            r = self.stitches.get(stitch_id)
            if r is None or not r.plane:
                return None
            return next((c.rtt_ms for c in self.registry.candidates(r.a_site, r.b_site)
                         if c.plane == r.plane), None)

    def probe_loss(self, stitch_id: str) -> float | None:
        with self._lock:
            r = self.stitches.get(stitch_id)
            return None if r is None or not r.plane else self.registry.probe_loss(r.a_site, r.b_site, r.plane)

    def metric_families(self) -> list:
        """Prometheus families for the controller's /metrics (read at scrape time)."""
        from prometheus_client.core import GaugeMetricFamily
        count = GaugeMetricFamily("foresight_stitches", "Stitches by state", labels=["state"])
        rate = GaugeMetricFamily("foresight_stitch_rate_mbps", "What entered each stitch end's tunnel",
                                 labels=["stitch", "site", "measure"])
        sites = GaugeMetricFamily("foresight_stitching_sites", "Sites whose advertisements hold")
        with self._lock:
            for state in STATES:
                count.add_metric([state], sum(1 for r in self.stitches.values() if r.state == state))
            for stitch_id, ends in sorted(self.rates.items()):
                for site, e in sorted(ends.items()):
                    rate.add_metric([stitch_id, site, "offered"], e.offered_mbps)
                    rate.add_metric([stitch_id, site, "delivered"], e.delivered_mbps)
            sites.add_metric([], len(self.registry.sites()))
        return [count, rate, sites]

    def end_rates(self, stitch_id: str) -> dict[str, EndRates]:
        with self._lock:
            return dict(self.rates.get(stitch_id, {}))

    # -- knobs (controller.appbase.Knob): each bandwidth stitch's reservation
    def knobs(self) -> list[Knob]:
        now = self.clock()
        with self._lock:
            records = [r for _, r in sorted(self.stitches.items()) if r.kind == "bandwidth"]
        out = []
        for r in records:
            verdict = self.policy.check(r.tenant, r.a_vnid, r.b_vnid, r.kind, 0.0)
            high = verdict.max_mbps if verdict.allowed and verdict.max_mbps else KNOB_MAX_MBPS
            out.append(Knob("stitch", r.id, "bandwidth_mbps", r.mbps, low=max(r.min_mbps, 0.001), high=high,
                            series_id=f"stitch:{r.id}", measured_mbps=self.demand_mbps(r.id, now)))
        return out

    def set_knob(self, kind: str, target: str, field: str, value: float) -> Knob:
        if (kind, field) != ("stitch", "bandwidth_mbps"):
            return super().set_knob(kind, target, field, value)
        try:
            self.adjust_bandwidth(target, value)
        except StitchError as err:
            raise KnobError(f"{kind}:{target}.{field}: {err}") from None
        return next(k for k in self.knobs() if k.target == target)

    def demand_mbps(self, stitch_id: str, now: float, stale_s: float = 10.0) -> float | None:
        """What the stitch carries (both ends' offered rates), None without fresh readings."""
        with self._lock:
            ends = [r for r in self.rates.get(stitch_id, {}).values() if now - r.time <= stale_s]
            return sum(r.offered_mbps for r in ends) if ends else None

    def check_idle(self, now: float | None = None) -> list[str]:
        """Delete the stitches whose demand stayed below ``idle_mbps`` for
        ``idle_after_s`` (``apps.stitching.demand``); their ids. A stitch without
        readings is left alone."""
        s = self.settings
        if not s.idle_mbps:
            return []
        now = self.clock() if now is None else now
        with self._lock:
            measured = {i: self.demand_mbps(i, now)
                        for i, r in self.stitches.items() if r.state == "ESTABLISHED"}
        demand = self.demand.demand({i: m for i, m in measured.items() if m is not None}, now)
        ended = []
        for stitch_id, mbps, idle_s in self.demand.idle(demand, now):
            try:
                self.delete(stitch_id, why=f"idle: {self.demand.described} demand {mbps:.3g} Mbit/s below "
                                           f"{s.idle_mbps:g} for {idle_s:.0f} s")
                ended.append(stitch_id)
            except StitchNotFound:
                pass
        return ended

    def open_predicted(self, now: float | None = None) -> list[str]:
        """Create the stitches ``stitching.predicted`` asks for whose pair's forecast
        reaches ``open_mbps``; their ids. Without a predictor, nothing."""
        opened = []
        for want, value in self.demand.to_open(self._joined):
            a, b = want.between
            req = StitchRequest(want.tenant, want.kind, a, b,
                                mbps=want.mbps if want.kind == "bandwidth" else 0.0)
            try:
                record = self.create(req, why=f"forecast {value:.3g} Mbit/s "
                                              f"{self.settings.horizon_s:g} s ahead "
                                              f"reaches {want.open_mbps:g}")
                opened.append(record.id)
            except StitchError as err:
                LOG.warning("stitching: predicted stitch %s not made: %s", pair_series(want), err)
        return opened

    def _joined(self, tenant: str, a_vnid: int, b_vnid: int) -> bool:
        with self._lock:
            return any(r.tenant == tenant and {r.a_vnid, r.b_vnid} == {a_vnid, b_vnid}
                       for r in self.stitches.values())

    @property
    def predictor(self):
        """The prediction service's client (None: reactive), used by ``demand``."""
        return self.demand.predictor

    @predictor.setter
    def predictor(self, client) -> None:
        self.demand.predictor = client

    @property
    def demand_basis(self) -> str:
        return self.demand.described

    def basis(self) -> str | None:
        """Idle checks and predicted stitches decide on forecasts while the predictor
        answers; None when neither is configured (no demand decision to make)."""
        if not (self.settings.idle_mbps or self.settings.predicted):
            return None
        return self.demand.basis.mode

    def get(self, stitch_id: str) -> StitchRecord:
        with self._lock:
            record = self._record(stitch_id)
            return replace(record, history=list(record.history))

    def list(self, tenant: str = "") -> list[StitchRecord]:
        with self._lock:
            return [replace(r, history=list(r.history)) for _, r in sorted(self.stitches.items())
                    if not tenant or r.tenant == tenant]

    def delete(self, stitch_id: str, why: str = "on request") -> StitchRecord:
        with self._lock:
            record = self._record(stitch_id)
            del self.stitches[stitch_id]
            self._pending.pop(stitch_id, None)
            self.rates.pop(stitch_id, None)
            self._meters.forget(lambda group: group[0] == stitch_id)
            if self.store is not None:
                self.store.delete(stitch_id)
            self._step(record, f"deleted {why}")
            self._event("DELETED", stitch_id, f"{why}; its flows and meters go", record)
        self.resync()
        return record

    # ---- the provider ----------------------------------------------------------------

    def desired(self, dp_id: int, now: float) -> Desired:
        with self._lock:
            ad = self.registry.by_dp_id(dp_id)
            if ad is None:
                return Desired()
            sites = {s.site: self._site_view(s) for s in self.registry.sites()}
            stitches = [self._plan(r) for r in self.stitches.values() if r.plane and self._ready(r)]
        return dataplane.site_entries(sites[ad.site], sites, stitches)

    def close(self) -> None:
        self.bus.close()
        if self.store is not None:
            self.store.close()

    # ---- internals -----------------------------------------------------------------

    def _check(self, req: StitchRequest) -> None:
        problems = []
        if not req.tenant:
            problems.append("tenant: empty")
        if req.kind not in STITCH_KINDS:
            problems.append(f"kind: {req.kind!r} is not one of {', '.join(STITCH_KINDS)}")
        for name in ("a_vnid", "b_vnid"):
            if not 0 < getattr(req, name) < 2**24:
                problems.append(f"{name}: {getattr(req, name)} outside 1..16777215")
        if req.kind == "direct" and not (req.a_host and req.b_host):
            problems.append("a_host, b_host: a direct stitch joins two hosts; name both")
        if req.kind != "direct" and (req.a_host or req.b_host):
            problems.append(f"a_host, b_host: only a direct stitch names hosts, not a {req.kind} one")
        if req.kind == "bandwidth" and not req.mbps > 0:
            problems.append("mbps: a bandwidth stitch needs the rate to reserve")
        if req.kind != "bandwidth" and req.mbps:
            problems.append("mbps: only a bandwidth stitch reserves a rate (use min_mbps)")
        for name in ("min_mbps", "max_rtt_ms"):
            if getattr(req, name) < 0:
                problems.append(f"{name}: {getattr(req, name)} is negative")
        if req.id and (len(req.id) > 64 or not all(c.isalnum() or c in "-_." for c in req.id)):
            problems.append(f"id: {req.id!r} must be 1-64 letters, digits, '-', '_' or '.'")
        if problems:
            raise InvalidStitch("; ".join(problems))

    def _locate(self, req: StitchRequest) -> tuple[str, str]:
        """The two sites of a request (negotiation: who advertises the VNIDs)."""
        sites = []
        for vnid, named in ((req.a_vnid, req.a_site), (req.b_vnid, req.b_site)):
            having = self.registry.sites_with(req.tenant, vnid)
            if named:
                if named not in having:
                    raise StitchNotFound(f"site {named} does not advertise VN {vnid} of {req.tenant}")
                sites.append(named)
            elif not having:
                raise StitchNotFound(f"no site advertises VN {vnid} of {req.tenant}")
            elif len(having) > 1:
                raise InvalidStitch(f"VN {vnid} of {req.tenant} is at sites {', '.join(having)}: name one")
            else:
                sites.append(having[0])
        if sites[0] == sites[1]:
            raise InvalidStitch(f"both VNs are at site {sites[0]}: a stitch joins two sites")
        return sites[0], sites[1]

    def _record(self, stitch_id: str) -> StitchRecord:
        record = self.stitches.get(stitch_id)
        if record is None:
            raise StitchNotFound(f"no stitch {stitch_id!r}")
        return record

    def _free_index(self) -> int:
        used = {r.index for r in self.stitches.values()}
        return next(i for i in range(len(used) + 1) if i not in used)

    def _reserved(self, leave_out: str = "") -> dict[tuple[str, int], float]:
        out: dict[tuple[str, int], float] = {}
        for r in self.stitches.values():
            if r.id == leave_out or not r.plane:
                continue
            need = max(r.mbps, r.min_mbps)
            for site in (r.a_site, r.b_site):
                out[(site, r.plane)] = out.get((site, r.plane), 0.0) + need
        return out

    def _ready(self, record: StitchRecord) -> bool:
        if not record.encrypted:
            return True
        return all(self._encrypted_port(site, record.id) is not None
                   for site in (record.a_site, record.b_site))

    def _ports(self, dp_id: int) -> dict[str, int]:
        return self.view.port_numbers(dp_id)

    def _encrypted_port(self, site: str, stitch_id: str) -> int | None:
        ad = self.registry.get(site)
        if ad is None:
            return None
        name = dict(ad.tunnels).get(stitch_id)
        return None if name is None else self._ports(ad.dp_id).get(name)

    def _site_view(self, ad: Advertisement) -> dataplane.Site:
        ports = self._ports(ad.dp_id)
        hosts = tuple(dataplane.Host(h.name, h.mac, h.ip, h.vnid, h.tenant, ports.get(h.name))
                      for h in ad.hosts)
        return dataplane.Site(ad.site, ad.dp_id, hosts, ports.get("vxlan"),
                              {p.plane: p.address for p in ad.planes})

    def _plan(self, r: StitchRecord) -> dataplane.Stitch:
        enc = None
        if r.encrypted:
            enc = {site: self._encrypted_port(site, r.id) for site in (r.a_site, r.b_site)}
        return dataplane.Stitch(r.index, r.kind, r.vni, dataplane.End(r.a_site, r.a_vnid, r.a_host or None),
                          dataplane.End(r.b_site, r.b_vnid, r.b_host or None), r.plane, r.mbps or None, enc)

    def _adjust(self, now: float) -> None:
        """Move every stitch off a plane that is down (or gone) at either end (called
        with the lock). A plane that is up keeps its stitches: the free bandwidth the
        sites measure includes the stitches' own traffic, so judging a stitch by it
        would move it off its plane for carrying what it was made for."""
        for record in sorted(self.stitches.values(), key=lambda r: r.index):
            need = max(record.min_mbps, record.mbps)
            up = {c.plane for c in self.registry.candidates(record.a_site, record.b_site)}
            if record.plane and record.plane in up:
                if record.state == "DEGRADED":
                    self._set_state(record, "ESTABLISHING", f"plane {record.plane} serves it again", now)
                continue
            candidates = self.registry.candidates(record.a_site, record.b_site, need,
                                                  record.max_rtt_ms or None,
                                                  self._reserved(leave_out=record.id))
            if not candidates:
                if record.state != "DEGRADED":
                    self._set_state(record, "DEGRADED", f"no underlay path between {record.a_site} and "
                                                        f"{record.b_site} offers {need:g} Mbit/s", now)
                continue
            old, record.plane = record.plane, candidates[0].plane
            record.changed_at = now
            why = f"plane {old} no longer serves it" if old else "a path appeared"
            self._step(record, f"moved to {candidates[0].describe()} ({why})")
            if record.state == "DEGRADED":
                record.state = "ESTABLISHING"
            self._save(record)
            self._event("ADJUSTED", record.id, f"{why}: now on {candidates[0].describe()}", record)

    def _note_tunnel_errors(self, ad: Advertisement, now: float) -> None:
        """A site that could not build a stitch's encrypted tunnel says why: the stitch
        (which carries nothing until both tunnels are up) says so too."""
        for stitch_id, reason in ad.tunnel_errors:
            record = self.stitches.get(stitch_id)
            detail = f"site {ad.site} cannot build the encrypted tunnel: {reason}"
            if record is not None and record.state == "ESTABLISHING" and detail not in record.detail:
                others = [d for d in record.detail.split("; ") if d.startswith("site ") and
                          not d.startswith(f"site {ad.site} ")]
                record.detail = "; ".join(sorted(others + [detail]))
                record.changed_at = now
                self._step(record, detail)
                self._save(record)
                self._event("ADJUSTED", record.id, detail, record)

    def _set_state(self, record: StitchRecord, state: str, why: str, now: float) -> None:
        record.state, record.detail, record.changed_at = state, why, now
        self._step(record, f"{state.lower()}: {why}")
        self._save(record)
        self._event(state if state == "DEGRADED" else "ADJUSTED", record.id, why, record)

    def _step(self, record: StitchRecord, line: str) -> None:
        record.history = (record.history + [line])[-HISTORY:]

    def _save(self, record: StitchRecord) -> None:
        if self.store is not None:
            self.store.put(record)

    def _event(self, kind: str, stitch_id: str, detail: str, record: StitchRecord | None = None) -> None:
        snapshot = None if record is None else replace(record, history=list(record.history))
        self.bus.publish([StitchEvent(kind, self.clock(), stitch_id, detail, snapshot)])
