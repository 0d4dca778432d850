"""Change records: what a change is, the states it goes through, and the errors of the API.

A ``Change`` is one template rendered with parameters. Its life::

    QUEUED -> STAGING -> STAGED -> DEPLOYING -> DEPLOYED -> ROLLED_BACK
                      \\-> STAGE_FAILED          \\-> ROLLED_BACK (a post-deploy check failed)

Only a STAGED change deploys; only a DEPLOYED one rolls back; a QUEUED or
STAGE_FAILED one may be staged again. Every transition is recorded with its reason
(``detail``) and stored before anything acts on it, so a restart finds each change
where it was (a change found STAGING or DEPLOYING after a crash is put back to
QUEUED, or rolled back: ``engine.Provisioner.recover``).

The rendered entries a change puts on switches (``Rendered.entries``) are stored as
JSON (``entries_json``/``entries_from_json``) so a restarted controller wants the
same flows it installed without rendering again.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from controller.desired import Desired
from controller.flows import FlowSpec
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec

STATES = ("QUEUED", "STAGING", "STAGED", "STAGE_FAILED", "DEPLOYING", "DEPLOYED", "ROLLED_BACK")
OPEN = ("QUEUED", "STAGING", "STAGED", "DEPLOYING")


class ProvisioningError(Exception):
    """Base of the API's errors."""


class InvalidChange(ProvisioningError, ValueError):
    """A request names a bad value; ``field`` says which (INVALID_ARGUMENT)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(ProvisioningError, LookupError):
    """No change, recommendation or template of that id (NOT_FOUND)."""


class WrongState(ProvisioningError):
    """The change's state cannot carry the request (FAILED_PRECONDITION)."""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    duration_s: float = 0.0


@dataclass
class Change:
    id: str
    template: str
    params: dict
    summary: str
    created_s: float
    mode: str = "auto"
    state: str = "QUEUED"
    detail: str = "rendered"
    recommendation_id: str = ""
    resource: str = ""
    crossing_s: float = 0.0
    confidence: float = 0.0
    need_mbps: float = 0.0
    capacity_mbps: float = 0.0  # the resource's capacity when the change was made (0: not known)
    knobs: list[dict] = field(default_factory=list)  # KnobChange.as_json()
    promise: dict = field(default_factory=dict)  # Promise.as_json()
    touches: list[int] = field(default_factory=list)
    entries: dict[int, Desired] = field(default_factory=dict)
    staging: dict = field(default_factory=dict)  # checks, started_s, finished_s, updates
    deploy: dict = field(default_factory=dict)  # started_s, finished_s, switches, checks, ...
    rollback: dict = field(default_factory=dict)  # started_s, duration_s, reason, restored
    outcome: dict = field(default_factory=dict)
    history: list[tuple[float, str, str]] = field(default_factory=list)  # (wall s, state, detail)

    def as_json(self) -> dict:
        body = asdict(self)
        body["entries"] = entries_json(self.entries)
        return body

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> "Change":
        body = dict(body)
        body["entries"] = entries_from_json(body.get("entries", {}))
        body["history"] = [tuple(h) for h in body.get("history", [])]
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in body.items() if k in known})


# ---- rendered entries as JSON -------------------------------------------------------------


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def entries_json(entries: Mapping[int, Desired]) -> dict:
    out = {}
    for dp, d in entries.items():
        out[str(dp)] = dict(
            flows=[
                [f.table, f.priority, list(f.match), list(f.actions), f.goto, f.cookie, f.meter]
                for f in d.flows
            ],
            groups=[
                [g.group_id, g.type, [[b.weight, b.watch_port, list(b.actions)] for b in g.buckets]]
                for g in d.groups
            ],
            meters=[asdict(m) for m in d.meters],
        )
    return out


def entries_from_json(body: Mapping[str, Any]) -> dict[int, Desired]:
    out = {}
    for dp, d in body.items():
        flows = tuple(
            FlowSpec(t, p, _tuples(m), _tuples(a), goto, cookie, meter)
            for t, p, m, a, goto, cookie, meter in d.get("flows", [])
        )
        groups = tuple(
            GroupSpec(gid, typ, tuple(Bucket(w, watch, _tuples(a)) for w, watch, a in buckets))
            for gid, typ, buckets in d.get("groups", [])
        )
        meters = tuple(MeterSpec(**m) for m in d.get("meters", []))
        out[int(dp)] = Desired(flows=flows, groups=groups, meters=meters)
    return out


def params_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True)
