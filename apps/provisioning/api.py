"""The provisioning gRPC API (``proto/provisioning.proto``): protobuf <-> the engine.

The servicer holds no state; errors map to status codes in one place (``_CODES``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable

import grpc

from apps.provisioning import templates as tpl
from apps.provisioning.changes import OPEN, Change, InvalidChange, NotFound, WrongState
from apps.provisioning.engine import Recommendation
from apps.provisioning.store import ProvisioningStoreError
from controller.api import app_service, stream
from proto import provisioning_pb2 as pb
from proto import provisioning_pb2_grpc as pb_grpc
from proto.serving import status_for

if TYPE_CHECKING:
    from apps.provisioning.app import ProvisioningApp

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Provisioning"].full_name
DEFAULT_LIMIT = 50

_CODES = {
    InvalidChange: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    WrongState: grpc.StatusCode.FAILED_PRECONDITION,
    ProvisioningStoreError: grpc.StatusCode.UNAVAILABLE,
}


def _checks(rows) -> list[pb.Check]:
    return [
        pb.Check(name=c["name"], ok=c["ok"], detail=c["detail"], duration_s=c["duration_s"]) for c in rows
    ]


def change_pb(c: Change) -> pb.Change:
    msg = pb.Change(
        id=c.id,
        template=c.template,
        params_json=json.dumps(c.params, sort_keys=True),
        state=pb.ChangeState.Value(c.state),
        summary=c.summary,
        recommendation_id=c.recommendation_id,
        created_s=c.created_s,
        crossing_s=c.crossing_s,
        mode=c.mode,
        detail=c.detail,
        resource=c.resource,
        confidence=c.confidence,
    )
    if c.staging:
        s = c.staging
        msg.staging.CopyFrom(
            pb.StagingReport(
                checks=_checks(s.get("checks", [])),
                started_s=s["started_s"],
                finished_s=s["finished_s"],
                updates=s.get("updates", 0),
            )
        )
    if c.deploy:
        d = c.deploy
        msg.deploy.CopyFrom(
            pb.DeployRecord(
                started_s=d["started_s"],
                finished_s=d["finished_s"],
                switches=d.get("switches", []),
                checks=_checks(d.get("checks", [])),
                deployed_at_s=d.get("deployed_at_s", 0.0),
                before_crossing=d.get("before_crossing", False),
            )
        )
    if c.rollback:
        r = c.rollback
        msg.rollback.CopyFrom(
            pb.RollbackRecord(
                started_s=r["started_s"],
                duration_s=r["duration_s"],
                reason=r["reason"],
                restored=r["restored"],
            )
        )
    if c.outcome:
        o = c.outcome
        msg.outcome.CopyFrom(
            pb.Outcome(
                **{
                    k: o[k]
                    for k in (
                        "measured_peak_mbps",
                        "forecast_mbps",
                        "previous_mbps",
                        "promised_mbps",
                        "needed",
                        "held",
                        "measured_s",
                    )
                }
            )
        )
    return msg


def recommendation_pb(r: Recommendation) -> pb.Recommendation:
    n = r.need
    return pb.Recommendation(
        id=r.id,
        resource=r.resource,
        template=r.template,
        params_json=json.dumps(r.params, sort_keys=True),
        action=r.action,
        reason=n.reason(),
        confidence=r.confidence,
        deadline_s=n.deadline_s,
        crossing_s=n.crossing,
        capacity_mbps=n.resource.capacity_mbps,
        need_mbps=n.need_mbps,
        unmet_mbps=n.unmet_mbps,
        priority=r.priority,
        time_s=n.time,
        change_id=r.change_id,
        model=n.model,
    )


class ProvisioningServicer(pb_grpc.ProvisioningServicer):
    def __init__(self, app: ProvisioningApp):
        self.app = app
        self.engine = app.engine

    def ListRecommendations(self, request, context):
        e = self.engine
        return pb.ListRecommendationsResponse(
            recommendations=[recommendation_pb(r) for r in e.ranked()],
            basis=self.app.basis(),
            evaluated_s=e.evaluated_s,
            trigger=e.trigger,
        )

    def GetQueue(self, request, context):
        return pb.QueueResponse(changes=[change_pb(c) for c in self.engine.queue()])

    def Stage(self, request, context):
        with status_for(context, _CODES):
            given = [f for f in ("change_id", "recommendation_id", "template") if getattr(request, f)]
            if len(given) != 1:
                raise InvalidChange(
                    "change_id",
                    "give exactly one of change_id, recommendation_id or "
                    f"template (got {', '.join(given) or 'none'})",
                )
            if request.change_id:
                change = self.engine.get(request.change_id)
            elif request.recommendation_id:
                change = self.engine.from_recommendation(request.recommendation_id)
            else:
                try:
                    params = json.loads(request.params_json or "{}")
                except ValueError as err:
                    raise InvalidChange("params_json", f"not JSON: {err}") from None
                if not isinstance(params, dict):
                    raise InvalidChange("params_json", "must be a JSON object")
                for name in ("crossing_s", "need_mbps"):
                    if not getattr(request, name) >= 0:
                        raise InvalidChange(name, "must be >= 0")
                change = self.engine.create(request.template, params, crossing_s=request.crossing_s,
                                            need_mbps=request.need_mbps)
            if change.state in ("QUEUED", "STAGE_FAILED"):
                change = self.engine.stage(change.id)
            return change_pb(change)

    def Deploy(self, request, context):
        with status_for(context, _CODES):
            return change_pb(self.engine.deploy(_id(request.change_id)))

    def Rollback(self, request, context):
        with status_for(context, _CODES):
            return change_pb(self.engine.rollback(_id(request.change_id), request.reason or "operator"))

    def GetChange(self, request, context):
        with status_for(context, _CODES):
            return change_pb(self.engine.get(_id(request.change_id)))

    def ListChanges(self, request, context):
        return pb.ListChangesResponse(
            changes=[change_pb(c) for c in self.engine.list(request.limit or DEFAULT_LIMIT)]
        )

    def ListTemplates(self, request, context):
        out = []
        for ref, t in sorted(tpl.LIBRARY.items()):
            accuracy, outcomes = self.engine.accuracy(ref)
            out.append(
                pb.Template(
                    name=t.name,
                    version=t.version,
                    summary=t.summary,
                    params_schema_json=json.dumps(t.Params.model_json_schema(), sort_keys=True),
                    mode=self.engine.mode(ref),
                    accuracy=accuracy,
                    outcomes=outcomes,
                    latest=tpl.TEMPLATES[t.name] is t,
                )
            )
        return pb.ListTemplatesResponse(templates=out)

    def WatchProvisioning(self, request, context):
        e = self.engine
        wanted = request.change_id
        if wanted and wanted not in e.changes:
            context.abort(grpc.StatusCode.NOT_FOUND, f"change {wanted!r}: no such change")

        def accept(event) -> bool:
            return not wanted or event.change_id == wanted

        sub = e.bus.subscribe(frozenset(), accept=accept)
        try:
            now = self.app.now()
            for c in e.list(limit=10**9):
                if (c.id == wanted) if wanted else c.state in OPEN:
                    yield pb.ProvisioningEvent(
                        kind=pb.SNAPSHOT, time_s=now, change_id=c.id, detail=c.detail, change=change_pb(c)
                    )
            yield pb.ProvisioningEvent(
                kind=pb.WATCHING, time_s=now, change_id=wanted, detail="snapshot complete"
            )
            yield from stream(sub, context, self._event_pb)
        finally:
            e.bus.unsubscribe(sub)

    def _event_pb(self, event) -> pb.ProvisioningEvent:
        msg = pb.ProvisioningEvent(
            kind=pb.EventKind.Value(event.kind),
            time_s=event.time,
            change_id=event.change_id,
            detail=event.detail,
        )
        if event.change_id:
            msg.change.CopyFrom(change_pb(self.engine.get(event.change_id)))
        return msg


def _id(change_id: str) -> str:
    if not change_id:
        raise InvalidChange("change_id", "required")
    return change_id


def services(app: ProvisioningApp) -> list[tuple[str, Callable[[grpc.Server], None]]]:
    return [app_service(ProvisioningServicer(app), pb_grpc.add_ProvisioningServicer_to_server, SERVICE_NAME)]
