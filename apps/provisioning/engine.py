"""The provisioning engine: needs -> recommendations -> changes -> staging -> deploy -> outcome.

``Provisioner`` holds the changes and the recommendation queue, and carries out each
step; the app (``apps.provisioning.app``) runs it from a background loop and the API.

- ``evaluate(now, forecasts)``: each resource the apps publish (their ``Knob``\\ s
  with a demand series: a slice's bandwidth, ...) is assessed against its forecast
  (``needs.assess``); each need becomes a ``Recommendation``: the template for its
  kind rendered for the need (``Template.params_for``, the need divided by the
  headroom), its confidence (the probability of exceeding times the template's
  measured accuracy), its deadline (the forecast crossing) and its priority
  (expected unmet demand x confidence x urgency, urgency = 1 / (1 + time to impact /
  ``urgency_s``)). A resource with a change on the way that already provides the need
  gets no recommendation.
- ``create(template, params)``: render and validate (``TemplateError`` names the
  parameter; nothing is stored for a refused render).
- ``stage(id)``: the checks, in order, each recorded; the first failure stops it:
  ``verify`` (the change's rule updates on the in-memory model of every switch:
  ``model.DataPlane.trial``: no new loop, black hole, unreachable pair, isolation
  breach or dangling group or meter; the pairs it promises reach), ``covers-need``
  (what it promises is at least the need it answers: a rate below the need fails),
  then the rehearsal's checks when one is configured (``Rehearsal``).
- ``deploy(id)``: only a STAGED change. The switches' state is copied, the knobs are
  set and the entries added, and the engine waits until every switch confirms (with
  ``controller.sync.bundles`` each switch's share is one OpenFlow bundle, switches in
  make-before-break order). Post-deploy checks: confirmed in time, nothing refused,
  the model of what is now desired has no new finding and the promised pairs reach,
  the knobs hold the new values. A failed check rolls the change back at once.
- ``rollback(id)``: the knobs back to their previous values, the entries removed,
  wait for confirmation; ``restored`` says whether every touched switch holds exactly
  what it held before the deploy, ``duration_s`` how long it took.
- ``observe(now)`` and ``judge(now)``: after deployment the resource's measured
  demand is followed; once its crossing is ``outcome_after_s`` past, the outcome is
  recorded (needed: the peak exceeded the old capacity; held: it stayed within the
  promise) and the template's accuracy follows.

Every transition is stored before it acts (``store``); ``recover`` puts a change
left STAGING back to QUEUED and rolls a change left DEPLOYING back.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Protocol, Sequence

from apps.provisioning import templates as tpl
from apps.provisioning.changes import OPEN, Change, Check, InvalidChange, NotFound, WrongState
from apps.provisioning.model import DataPlane
from apps.provisioning.needs import Need, Point, Resource, assess
from apps.provisioning.store import ProvisioningStore
from apps.provisioning.verify import VerifyError
from controller.appbase import CoreView, KnobError
from controller.desired import Desired, Entries
from controller.events import EventBus

LOG = logging.getLogger(__name__)

CAPACITY_FIELDS = {"bandwidth_mbps", "rate_mbps"}  # knobs that are a resource's capacity
LINK_SERIES = "link:"  # the predictor series of a link's load: link:<src>-<dst> (switch names)
LINK_NEEDS = ("off", "metadata", "all")  # which links are resources (Settings.link_needs)


def link_series(src: str, dst: str) -> str:
    return f"{LINK_SERIES}{src}-{dst}"


@dataclass(frozen=True)
class Settings:
    horizon_s: float = 3600.0
    threshold: float = 0.5
    service_quantile: float = 0.95
    headroom: float = 0.9
    urgency_s: float = 900.0
    templates: Mapping[str, str] = field(default_factory=dict)  # resource kind -> template name
    modes: Mapping[str, str] = field(default_factory=dict)  # template name -> auto | approval
    default_mode: str = "auto"
    confirm_timeout_s: float = 10.0
    outcome_after_s: float = 900.0
    held_tolerance: float = 0.02
    isolate: tuple[tuple[str, ...], ...] = ()
    # links as resources: "metadata" those whose capacity the topology metadata states,
    # "all" also those known by port speed, "off" none
    link_needs: str = "metadata"
    link_timeout_s: float = 15.0  # a spare link brought in (or out) shows in the topology within it


@dataclass
class Recommendation:
    id: str
    need: Need
    template: str
    params: dict
    action: str
    confidence: float
    priority: float
    change_id: str = ""

    @property
    def resource(self) -> str:
        return self.need.resource.key


@dataclass
class ProvisioningEvent:
    kind: str  # TRANSITION | EVALUATED
    time: float
    change_id: str = ""
    detail: str = ""


class Rehearsal(Protocol):
    """A staging copy of the network where a change is tried for real
    (``labs.staging``: the same topology in its own Mininet namespaces with its own
    controller). ``rehearse`` applies the change there, replays its forecast traffic,
    probes, takes it back and returns its checks (each named ``rehearsal:...``);
    ``deployed`` and ``rolled_back`` keep the copy in step with production; ``close``
    takes the copy down."""

    def rehearse(self, change: Change, rendered: tpl.Rendered) -> list[Check]: ...

    def deployed(self, change: Change) -> None: ...

    def rolled_back(self, change: Change) -> None: ...

    def close(self) -> None: ...


class LiveContext:
    """``templates.Context`` over the live core (``CoreView``)."""

    def __init__(self, view: CoreView):
        self.view = view
        self._knobs = {k.key: k for k in view.knobs()}

    def switch(self, name: str) -> int | None:
        for dp in self.view.switch_ids():
            if name in (self.view.switch_name(dp), str(dp), f"dp{dp:x}", f"{dp:016x}"):
                return dp
        return None

    def switch_name(self, dp_id: int) -> str:
        return self.view.switch_name(dp_id)

    def port_toward(self, dp_id: int, peer: int) -> int | None:
        return next(
            (lk.src_port for lk in self.view.links() if lk.src_dp == dp_id and lk.dst_dp == peer), None
        )

    def host(self, ref: str) -> tpl.HostRef | None:
        h = self.view.host(ref.lower()) if ":" in ref else self.view.host_by_ip(ref)
        if h is None or not h.ipv4:
            return None
        return tpl.HostRef(h.mac, sorted(h.ipv4)[0], h.dp_id, h.port_no)

    def ports(self, dp_id: int) -> list[int]:
        return sorted(self.view.port_numbers(dp_id).values())

    def host_ports(self, dp_id: int) -> list[int]:
        return sorted({h.port_no for h in self.view.hosts() if h.dp_id == dp_id})

    def knob(self, kind: str, target: str, field_: str):
        return self._knobs.get(f"{kind}:{target}.{field_}")

    def targets(self, kind: str) -> list[str]:
        return sorted({k.target for k in self._knobs.values() if k.kind == kind})

    def links(self) -> list[tuple[int, int, float, float]]:
        return [(lk.src_dp, lk.dst_dp, lk.capacity_mbps, lk.rate_mbps) for lk in self.view.links()]

    def capacity(self, a: int, b: int) -> float | None:
        return self.view.capacity_mbps(a, b)


class Provisioner:
    def __init__(
        self,
        view: CoreView,
        resync: Callable[[], None],
        settings: Settings,
        store: ProvisioningStore | None = None,
        rehearsal: Rehearsal | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.view = view
        self.resync = resync
        self.settings = settings
        self.store = store
        self.rehearsal = rehearsal
        self.clock = clock
        self.sleep = sleep  # while waiting for the topology (a test's fake network advances in it)
        self.lock = threading.RLock()  # the records; never held while waiting on switches
        self._work = threading.Lock()  # one stage, deploy or rollback at a time
        self.bus = EventBus(describe=lambda e: f"provisioning {e.kind} {e.change_id} {e.detail}")
        self.model = DataPlane(view, settings.isolate)
        self.changes: dict[str, Change] = {}
        self._seq: dict[str, int] = {}
        self.recommendations: dict[str, Recommendation] = {}
        self.evaluated_s = 0.0
        self.trigger = ""
        self.deployed: dict[str, dict[int, Desired]] = {}  # change id -> the entries it holds
        self.peaks: dict[str, float] = {}
        self._snapshots: dict[str, dict[int, Entries | None]] = {}
        self._last_updates = 0
        if store is not None:
            for seq, change in store.changes():
                self.changes[change.id] = change
                self._seq[change.id] = seq
                if change.state == "DEPLOYED" and change.entries:
                    self.deployed[change.id] = change.entries
            self.peaks = {k: float(v) for k, v in store.get("peaks", {}).items()}

    # ---- records ----------------------------------------------------------------------------
    def _put(self, change: Change) -> None:
        if self.store is not None:
            self.store.put_change(self._seq[change.id], change)

    def _move(self, change: Change, state: str, detail: str) -> None:
        with self.lock:
            change.state, change.detail = state, detail
            change.history.append((time.time(), state, detail))
            self._put(change)
        LOG.info("provisioning: change %s (%s) -> %s: %s", change.id, change.summary, state, detail)
        self.bus.publish([ProvisioningEvent("TRANSITION", self.clock(), change.id, f"{state}: {detail}")])

    def get(self, change_id: str) -> Change:
        with self.lock:
            change = self.changes.get(change_id)
        if change is None:
            raise NotFound(f"change {change_id!r}: no such change")
        return change

    def list(self, limit: int = 50) -> list[Change]:
        with self.lock:
            return sorted(self.changes.values(), key=lambda c: -self._seq[c.id])[:limit]

    def queue(self) -> list[Change]:
        """Changes not yet deployed, in the order they are worked on: earliest crossing first."""
        with self.lock:
            open_ = [c for c in self.changes.values() if c.state in OPEN and c.state != "DEPLOYING"]
        return sorted(open_, key=lambda c: (c.crossing_s or float("inf"), self._seq[c.id]))

    def mode(self, template: str) -> str:
        name = template.split("@")[0]
        return self.settings.modes.get(name, self.settings.default_mode)

    # ---- templates' accuracy ------------------------------------------------------------------
    def accuracy(self, template: str) -> tuple[float, int]:
        """Share of the template's judged outcomes that were needed and held (1.0 with none)."""
        name = template.split("@")[0]
        with self.lock:
            judged = [
                c.outcome for c in self.changes.values() if c.outcome and c.template.split("@")[0] == name
            ]
        if not judged:
            return 1.0, 0
        good = sum(1 for o in judged if o["needed"] and o["held"])
        # Laplace's rule: one good and one bad outcome assumed, so a single miss does not zero it.
        return (good + 1) / (len(judged) + 2), len(judged)

    # ---- needs and recommendations -----------------------------------------------------------
    def resources(self) -> list[Resource]:
        out = []
        for k in self.view.knobs():
            if (
                k.series_id
                and k.field in CAPACITY_FIELDS
                and k.value > 0
                and k.kind in ("slice", "stitch", "meter")
            ):
                out.append(
                    Resource(
                        k.kind,
                        k.target,
                        k.value,
                        k.series_id,
                        tuple(self.view.switch_name(dp) for dp in k.switches),
                        k.high,
                    )
                )
        return out + self.link_resources()

    def link_resources(self) -> list[Resource]:
        """Each directed link in service as a resource (``Settings.link_needs``): its
        capacity, its series ``link:<src>-<dst>``, its two switches."""
        which = self.settings.link_needs
        if which == "off":
            return []
        out = []
        for lk in self.view.links():
            if lk.capacity_mbps <= 0 or (which == "metadata" and lk.capacity_source != "metadata"):
                continue
            src, dst = self.view.switch_name(lk.src_dp), self.view.switch_name(lk.dst_dp)
            out.append(Resource("link", f"{src}-{dst}", lk.capacity_mbps, link_series(src, dst), (src, dst)))
        return out

    def measured(self) -> dict[str, float]:
        """Each resource's demand as measured now (``kind:name`` -> Mbit/s): the knobs' own
        measurements and each link's rate at the last port poll."""
        out = {
            f"{k.kind}:{k.target}": k.measured_mbps for k in self.view.knobs() if k.measured_mbps is not None
        }
        if self.settings.link_needs != "off":
            for lk in self.view.links():
                name = f"link:{self.view.switch_name(lk.src_dp)}-{self.view.switch_name(lk.dst_dp)}"
                out[name] = out.get(name, 0.0) + lk.rate_mbps
        return out

    def evaluate(
        self, now: float, forecasts: Mapping[str, Sequence[Point]], trigger: str = "interval"
    ) -> list[Recommendation]:
        """Re-assess every resource against ``forecasts`` ({series: points}); the new queue."""
        s = self.settings
        ctx = LiveContext(self.view)
        recs: dict[str, Recommendation] = {}
        for resource in self.resources():
            points = forecasts.get(resource.series_id)
            if not points:
                continue
            need = assess(
                resource,
                points,
                now,
                threshold=s.threshold,
                service_quantile=s.service_quantile,
                horizon_s=s.horizon_s,
            )
            if need is None or self._answered(resource, need):
                continue
            answer = self._answer(resource.kind, need, ctx)
            if answer is None:
                continue
            template, params = answer
            acc, _ = self.accuracy(template.ref)
            confidence = need.confidence * acc
            urgency = 1.0 / (1.0 + need.deadline_s / s.urgency_s)
            rid = f"{resource.key}/{template.name}"
            recs[rid] = Recommendation(
                rid,
                need,
                template.ref,
                params,
                f"{template.name}: {json.dumps(params, sort_keys=True)}",
                confidence,
                need.unmet_mbps * confidence * urgency,
            )
        with self.lock:
            for rid, rec in recs.items():
                old = self.recommendations.get(rid)
                if old is not None and old.change_id and self.changes[old.change_id].state in OPEN:
                    rec.change_id = old.change_id
            self.recommendations = recs
            self.evaluated_s, self.trigger = now, trigger
        self.bus.publish(
            [ProvisioningEvent("EVALUATED", now, "", f"{trigger}: {len(recs)} recommendation(s)")]
        )
        return self.ranked()

    def _answer(self, kind: str, need: Need, ctx: LiveContext) -> tuple[tpl.Template, dict] | None:
        """The template (the one ``Settings.templates`` names for ``kind``, else each that
        answers the kind, in library order) and the parameters it answers ``need`` with."""
        named = self.settings.templates.get(kind)
        choices = (
            [tpl.lookup(named)] if named else [t for t in tpl.TEMPLATES.values() if t.resource_kind == kind]
        )
        for template in choices:
            params = template.params_for(need, ctx, self.settings.headroom)
            if params is not None:
                return template, params
        return None

    def _answered(self, resource: Resource, need: Need) -> bool:
        """A change on the way (or in place) for this resource already provides the need."""
        with self.lock:
            return any(
                c.resource == resource.key and c.state in OPEN and c.promise.get("mbps", 0) >= need.need_mbps
                for c in self.changes.values()
            )

    def ranked(self) -> list[Recommendation]:
        with self.lock:
            return sorted(self.recommendations.values(), key=lambda r: (-r.priority, r.need.crossing, r.id))

    # ---- changes ----------------------------------------------------------------------------
    def create(
        self,
        template: str,
        params: Mapping,
        *,
        recommendation: Recommendation | None = None,
        crossing_s: float = 0.0,
        need_mbps: float = 0.0,
    ) -> Change:
        """Render ``template`` with ``params`` into a QUEUED change (validated; nothing stored
        when it is refused)."""
        try:
            t = tpl.lookup(template)
            rendered = t.render(params, LiveContext(self.view))
        except tpl.TemplateError as err:
            raise InvalidChange(err.field, err.message) from None
        now = self.clock()
        with self.lock:
            seq = max(self._seq.values(), default=0) + 1
            change = Change(
                id=f"c{seq:05d}",
                template=t.ref,
                params=dict(rendered.params),
                summary=rendered.summary,
                created_s=now,
                mode=self.mode(t.ref),
                knobs=[k.as_json() for k in rendered.knobs],
                promise=rendered.promise.as_json(),
                touches=sorted(rendered.touches),
                entries=dict(rendered.entries),
                crossing_s=crossing_s,
                need_mbps=need_mbps,
            )
            if recommendation is not None:
                change.recommendation_id = recommendation.id
                change.resource = recommendation.resource
                change.crossing_s = recommendation.need.crossing
                change.confidence = recommendation.confidence
                change.need_mbps = recommendation.need.need_mbps
                change.capacity_mbps = recommendation.need.resource.capacity_mbps
                recommendation.change_id = change.id
            elif rendered.promise.resource:
                change.resource = rendered.promise.resource
            change.history.append((time.time(), "QUEUED", "rendered"))
            self._seq[change.id] = seq
            self.changes[change.id] = change
            self._put(change)
        self.bus.publish([ProvisioningEvent("TRANSITION", now, change.id, f"QUEUED: {change.summary}")])
        return change

    def from_recommendation(self, rec_id: str) -> Change:
        with self.lock:
            rec = self.recommendations.get(rec_id)
        if rec is None:
            raise NotFound(f"recommendation {rec_id!r}: not in the current queue")
        if rec.change_id and self.get(rec.change_id).state in OPEN:
            return self.get(rec.change_id)
        return self.create(rec.template, rec.params, recommendation=rec)

    def _rendered(self, change: Change) -> tpl.Rendered:
        knobs = tuple(tpl.KnobChange(**k) for k in change.knobs)
        p = change.promise
        promise = tpl.Promise(
            p.get("resource", ""), p.get("mbps", 0.0), tuple(tuple(x) for x in p.get("pairs", ()))
        )
        return tpl.Rendered(
            change.template,
            change.params,
            knobs,
            change.entries,
            promise,
            tuple(change.touches),
            change.summary,
        )

    # ---- staging ----------------------------------------------------------------------------
    def stage(self, change_id: str) -> Change:
        change = self.get(change_id)
        with self._work:
            if change.state not in ("QUEUED", "STAGE_FAILED"):
                raise WrongState(
                    f"change {change.id} is {change.state}: only a QUEUED or STAGE_FAILED change is staged"
                )
            self._move(change, "STAGING", "verifying")
            started = time.time()
            checks: list[Check] = []
            updates = 0
            try:
                checks.append(self._verify(change))
                updates = self._last_updates
                if checks[-1].ok:
                    checks.append(self._covers_need(change))
                if checks[-1].ok and self.rehearsal is not None:
                    t0 = time.perf_counter()
                    try:
                        checks += self.rehearsal.rehearse(change, self._rendered(change))
                    except Exception as err:  # noqa: BLE001 - a broken rehearsal fails the change, named
                        LOG.exception("provisioning: rehearsal of %s failed", change.id)
                        checks.append(
                            Check(
                                "rehearsal",
                                False,
                                f"rehearsal failed: {type(err).__name__}: {err}",
                                time.perf_counter() - t0,
                            )
                        )
            finally:
                change.staging = dict(
                    started_s=started,
                    finished_s=time.time(),
                    updates=updates,
                    checks=[c.__dict__ for c in checks],
                )
            failed = next((c for c in checks if not c.ok), None)
            if failed is not None:
                self._move(change, "STAGE_FAILED", f"{failed.name}: {failed.detail}")
            else:
                self._move(change, "STAGED", f"{len(checks)} check(s) passed")
        return change

    def _verify(self, change: Change) -> Check:
        t0 = time.perf_counter()
        self._last_updates = 0
        try:
            self.model.sync(self.clock())
            entries = {dp: d for dp, d in change.entries.items()}
            trial = self.model.trial(entries, [tuple(p) for p in change.promise.get("pairs", ())])
        except VerifyError as err:
            return Check("verify", False, str(err), time.perf_counter() - t0)
        self._last_updates = trial.updates
        if not trial.ok or not change.knobs:
            return Check("verify", trial.ok, trial.describe(), time.perf_counter() - t0)
        structural = {k.key for k in self.view.knobs() if k.structural}
        rates, shapes = [], []
        for k in change.knobs:
            key = f"{k['kind']}:{k['target']}.{k['field']}"
            (shapes if key in structural else rates).append(f"{key} {k['value']:g} -> {k['new']:g}")
        detail = trial.describe()
        if rates:
            detail += "; settings that change no rule now: " + ", ".join(rates)
        if shapes:
            detail += (
                "; changes which rules exist, known once its app applies it (checked after the "
                "deploy, post:verify, and by the rehearsal): " + ", ".join(shapes)
            )
        return Check("verify", True, detail, time.perf_counter() - t0)

    def _covers_need(self, change: Change) -> Check:
        promised = float(change.promise.get("mbps", 0.0))
        if not change.need_mbps:
            return Check("covers-need", True, "answers no forecast need")
        ok = promised >= change.need_mbps
        verdict = "covers" if ok else "is below"
        return Check(
            "covers-need",
            ok,
            f"promises {promised:g} Mbit/s, {verdict} the forecast need {change.need_mbps:.2f} Mbit/s",
        )

    # ---- deploying and rolling back ----------------------------------------------------------
    def _switches(self, change: Change) -> list[int]:
        live = self.view.switch_ids()
        return [dp for dp in change.touches if dp in live] or live

    def _snapshot(self, dps: list[int]) -> dict[int, Entries | None]:
        return {dp: self.view.installed_state(dp) for dp in dps}

    def _wait(self, started_mark, timeout_s: float) -> Check:
        mark = self.view.sync_mark(started_mark)
        t0 = time.perf_counter()
        try:
            ok = self.view.wait_confirmed(mark, timeout_s)
        except Exception as err:  # noqa: BLE001 - ChangeRefused / SwitchLost: named, the check fails
            return Check("post:confirmed", False, f"{type(err).__name__}: {err}", time.perf_counter() - t0)
        if not ok:
            due = ", ".join(self.view.switch_label(dp) for dp in self.view.unconfirmed(mark))
            return Check(
                "post:confirmed",
                False,
                f"not confirmed within {timeout_s:g} s by {due}",
                time.perf_counter() - t0,
            )
        refused = self.view.refusals(mark)
        if refused:
            return Check(
                "post:confirmed", False, "refused: " + "; ".join(refused[:3]), time.perf_counter() - t0
            )
        return Check("post:confirmed", True, "every switch confirmed", time.perf_counter() - t0)

    def deploy(self, change_id: str) -> Change:
        change = self.get(change_id)
        with self._work:
            if change.state != "STAGED":
                why = {"QUEUED": "it has not been staged", "STAGE_FAILED": "it failed staging"}.get(
                    change.state, f"it is {change.state}"
                )
                raise WrongState(f"change {change.id}: only a STAGED change deploys; {why}")
            self._move(change, "DEPLOYING", "applying")
            dps = self._switches(change)
            before = self._snapshot(dps)
            self._snapshots[change.id] = before
            started = time.time()
            baseline = self._findings()
            mark = self.view.sync_mark()
            checks: list[Check] = []
            try:
                self._apply(change)
                checks.append(self._wait(mark, self.settings.confirm_timeout_s))
                links = self._await_links(change.knobs, "new") if checks[-1].ok else None
                if links is not None:
                    checks.append(links)
                if checks[-1].ok:
                    checks += self._post_checks(change, baseline)
            except KnobError as err:
                checks.append(Check("post:knobs", False, str(err)))
            now = self.clock()
            change.deploy = dict(
                started_s=started,
                finished_s=time.time(),
                checks=[c.__dict__ for c in checks],
                switches=[self.view.switch_label(dp) for dp in dps],
                deployed_at_s=now,
                before_crossing=bool(change.crossing_s) and now <= change.crossing_s,
            )
            failed = next((c for c in checks if not c.ok), None)
            if failed is None:
                self._move(change, "DEPLOYED", f"in place on {len(dps)} switch(es)")
                self._mirror("deployed", change)
                return change
        return self._rollback(change, f"post-deploy check {failed.name} failed: {failed.detail}")

    def _apply(self, change: Change) -> None:
        if change.entries:
            with self.lock:
                self.deployed[change.id] = change.entries
            self.resync()
        for k in change.knobs:
            self.view.set_knob(k["kind"], k["target"], k["field"], k["new"])

    def _await_links(self, knobs: list[dict], which: str) -> Check | None:
        """Spare links brought into (or out of) service (``link`` knobs, their ``which``
        value): wait until the topology shows each both ways (or neither way), then
        until the switches confirm what forwarding made of the change; None when the
        change has no such knob."""
        wanted = {
            k["target"]: k[which] >= 0.5 for k in knobs if k["kind"] == "link" and k["field"] == "in_service"
        }
        if not wanted:
            return None
        t0 = time.perf_counter()
        ends = {k.target: k.switches for k in self.view.knobs() if k.kind == "link" and k.target in wanted}
        names = ", ".join(sorted(wanted))

        def pending() -> list[str]:
            present = {(lk.src_dp, lk.dst_dp) for lk in self.view.links()}
            out = []
            for name, up in wanted.items():
                a, b = (tuple(ends.get(name, ())) + (0, 0))[:2]
                if ((a, b) in present and (b, a) in present) != up:
                    out.append(name)
            return out

        while left := pending():
            if time.perf_counter() - t0 > self.settings.link_timeout_s:
                return Check(
                    "post:links",
                    False,
                    f"{', '.join(left)} not {'in' if wanted[left[0]] else 'out of'} service in the "
                    f"topology after {self.settings.link_timeout_s:g} s",
                    time.perf_counter() - t0,
                )
            self.sleep(0.05)
        seen = time.perf_counter() - t0
        confirmed = self._wait(self.view.sync_mark(), self.settings.confirm_timeout_s)
        state = "in" if all(wanted.values()) else "out of" if not any(wanted.values()) else "in/out of"
        detail = f"{names} {state} service both ways after {seen:.2f} s; {confirmed.detail}"
        return Check("post:links", confirmed.ok, detail, time.perf_counter() - t0)

    def _findings(self) -> set | None:
        """The findings of the switches' desired state now (None when there is no model)."""
        try:
            self.model.sync(self.clock())
        except VerifyError:
            return None
        return None if self.model.verifier is None else self.model.verifier.findings_set()

    def _post_checks(self, change: Change, baseline: set | None) -> list[Check]:
        """After the switches confirmed: what is now desired has no finding it did not have
        before the deploy and the promised pairs reach; the knobs hold their new values."""
        out = []
        t0 = time.perf_counter()
        try:
            self.model.sync(self.clock())
            v = self.model.verifier
            pairs = [tuple(p) for p in change.promise.get("pairs", ())]
            problems = [str(f) for f in v.findings() if baseline is not None and f not in baseline][:5]
            problems += [f"{a} does not reach {b}" for a, b in pairs if not v.reaches(a, b)]
            detail = "; ".join(problems) or ("no new finding" + (", promised pairs reach" if pairs else ""))
            out.append(Check("post:verify", not problems, detail, time.perf_counter() - t0))
        except VerifyError as err:
            out.append(Check("post:verify", False, str(err), time.perf_counter() - t0))
        now = {k.key: k.value for k in self.view.knobs()}
        wrong = [
            f"{k['kind']}:{k['target']}.{k['field']} is {now.get(key)} not {k['new']:g}"
            for k in change.knobs
            if now.get(key := f"{k['kind']}:{k['target']}.{k['field']}") != k["new"]
        ]
        out.append(Check("post:knobs", not wrong, "; ".join(wrong) or "knobs hold the new values"))
        return out

    def rollback(self, change_id: str, reason: str = "operator") -> Change:
        change = self.get(change_id)
        if change.state != "DEPLOYED":
            raise WrongState(f"change {change.id} is {change.state}: only a DEPLOYED change rolls back")
        return self._rollback(change, reason)

    def _rollback(self, change: Change, reason: str) -> Change:
        with self._work:
            t0 = time.perf_counter()
            started = time.time()
            mark = self.view.sync_mark()
            errors = []
            with self.lock:
                held = self.deployed.pop(change.id, None)
            if held is not None:
                self.resync()
            for k in reversed(change.knobs):
                try:
                    self.view.set_knob(k["kind"], k["target"], k["field"], k["value"])
                except KnobError as err:
                    errors.append(str(err))
            confirmed = self._wait(mark, self.settings.confirm_timeout_s)
            links = self._await_links(change.knobs, "value")
            if links is not None and not links.ok:
                errors.append(links.detail)
            duration = time.perf_counter() - t0
            before = self._snapshots.pop(change.id, None) or {}
            restored = bool(before) and all(
                _same(self.view.installed_state(dp), entries) for dp, entries in before.items()
            )
            change.rollback = dict(
                started_s=started,
                duration_s=duration,
                reason=reason,
                restored=restored,
                errors=errors,
                confirmed=confirmed.ok,
            )
            was_deployed = any(h[1] == "DEPLOYED" for h in change.history)
            self._move(change, "ROLLED_BACK", reason)
        if was_deployed:
            self._mirror("rolled_back", change)
        return change

    def _mirror(self, what: str, change: Change) -> None:
        """Tell the rehearsal's copy what production did (its failure is logged, not fatal)."""
        if self.rehearsal is None:
            return
        try:
            getattr(self.rehearsal, what)(change)
        except Exception:  # noqa: BLE001 - the copy lagging must not undo production's change
            LOG.exception("provisioning: the staging copy did not follow %s of %s", what, change.id)

    # ---- outcomes -----------------------------------------------------------------------------
    def observe(self) -> None:
        """Note each deployed change's resource demand as measured now (its peak so far)."""
        measured = self.measured()
        spare_rates = self._spare_rates()
        with self.lock:
            before = dict(self.peaks)
            for c in self.changes.values():
                if c.state == "DEPLOYED" and not c.outcome and c.resource in measured:
                    # a link relieved by a spare: its demand is what it carries plus what
                    # moved onto the spare
                    moved = sum(spare_rates.get(k["target"], 0.0) for k in c.knobs if k["kind"] == "link")
                    self.peaks[c.id] = max(self.peaks.get(c.id, 0.0), measured[c.resource] + moved)
            if self.store is not None and self.peaks != before:
                self.store.put("peaks", self.peaks)

    def _spare_rates(self) -> dict[str, float]:
        """Each link knob's (a spare's) rate now: the busier direction between its switches."""
        ends = {
            k.target: set(k.switches) for k in self.view.knobs() if k.kind == "link" and len(k.switches) == 2
        }
        if not ends:
            return {}
        out: dict[str, float] = {}
        for lk in self.view.links():
            for name, pair in ends.items():
                if {lk.src_dp, lk.dst_dp} == pair:
                    out[name] = max(out.get(name, 0.0), lk.rate_mbps)
        return out

    def judge(self, now: float) -> list[Change]:
        """Record the outcome of deployed changes whose crossing is ``outcome_after_s`` past."""
        out = []
        with self.lock:
            due = [
                c
                for c in self.changes.values()
                if c.state == "DEPLOYED"
                and not c.outcome
                and c.crossing_s
                and now >= c.crossing_s + self.settings.outcome_after_s
                and c.id in self.peaks
            ]
        for c in due:
            knob = c.knobs[0] if c.knobs else None
            previous = c.capacity_mbps or (
                knob["value"] if knob and knob["field"] in CAPACITY_FIELDS else 0.0
            )
            promised = float(c.promise.get("mbps", 0.0))
            peak = self.peaks[c.id]
            c.outcome = dict(
                measured_peak_mbps=peak,
                forecast_mbps=c.need_mbps,
                previous_mbps=previous,
                promised_mbps=promised,
                needed=peak > previous,
                held=peak <= promised * (1 + self.settings.held_tolerance),
                measured_s=now,
            )
            with self.lock:
                self._put(c)
            LOG.info(
                "provisioning: change %s outcome: peak %.2f Mbit/s, previous %.2f, promised %.2f: %s, %s",
                c.id,
                peak,
                previous,
                promised,
                "needed" if c.outcome["needed"] else "not needed",
                "held" if c.outcome["held"] else "exceeded",
            )
            out.append(c)
        return out

    # ---- what the app puts on switches ---------------------------------------------------------
    def desired(self, dp_id: int) -> Desired:
        with self.lock:
            parts = [e[dp_id] for e in self.deployed.values() if dp_id in e]
        if not parts:
            return Desired()
        return Desired(
            flows=tuple(f for d in parts for f in d.flows),
            groups=tuple(g for d in parts for g in d.groups),
            meters=tuple(m for d in parts for m in d.meters),
        )

    # ---- after a restart ----------------------------------------------------------------------
    def recover(self) -> list[str]:
        """After a restart: a change left STAGING goes back to QUEUED, one left DEPLOYING is
        rolled back, and a deployed change's knob that its app did not keep (an app that
        holds it in memory only, like QoS's class rates) is set again."""
        done = []
        for c in list(self.changes.values()):
            if c.state == "STAGING":
                self._move(c, "QUEUED", "staging interrupted by a restart")
                done.append(c.id)
            elif c.state == "DEPLOYING":
                with self.lock:
                    self.deployed[c.id] = c.entries
                c.state = "DEPLOYED"
                self._rollback(c, "deploy interrupted by a restart")
                done.append(c.id)
        latest: dict[str, dict] = {}
        for c in sorted(self.changes.values(), key=lambda c: self._seq[c.id]):
            for k in c.knobs:
                key = f"{k['kind']}:{k['target']}.{k['field']}"
                if c.state == "DEPLOYED":
                    latest[key] = dict(k, change=c.id)
                elif c.state == "ROLLED_BACK":
                    latest.pop(key, None)
        now = {k.key: k.value for k in self.view.knobs()}
        for key, k in sorted(latest.items()):
            if now.get(key) == k["value"] != k["new"]:
                try:
                    self.view.set_knob(k["kind"], k["target"], k["field"], k["new"])
                    LOG.warning(
                        "provisioning: %s was back at %g after the restart; change %s set it to %g again",
                        key,
                        k["value"],
                        k["change"],
                        k["new"],
                    )
                    done.append(k["change"])
                except KnobError as err:
                    LOG.error("provisioning: cannot set %s again for change %s: %s", key, k["change"], err)
        return done

    # ---- the automatic pipeline ----------------------------------------------------------------
    def step(
        self, now: float, forecasts: Mapping[str, Sequence[Point]], trigger: str = "interval", limit: int = 4
    ) -> list[Change]:
        """Evaluate, then take up to ``limit`` recommendations without a change (highest
        priority first): render, stage, and deploy those in auto mode. Staged changes in
        approval mode wait for ``deploy``."""
        self.observe()
        self.judge(now)
        done = []
        for rec in self.evaluate(now, forecasts, trigger):
            if len(done) >= limit:
                break
            if rec.change_id:
                continue
            try:
                change = self.create(rec.template, rec.params, recommendation=rec)
            except InvalidChange as err:
                LOG.warning("provisioning: recommendation %s cannot render: %s", rec.id, err)
                continue
            self.stage(change.id)
            if change.state == "STAGED" and change.mode == "auto":
                self.deploy(change.id)
            done.append(change)
        return done


def _same(now: Entries | None, before: Entries | None) -> bool:
    if now is None or before is None:
        return now is before
    return now.flows == before.flows and now.groups == before.groups and now.meters == before.meters
