from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ChangeState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_STATE_UNSPECIFIED: _ClassVar[ChangeState]
    QUEUED: _ClassVar[ChangeState]
    STAGING: _ClassVar[ChangeState]
    STAGED: _ClassVar[ChangeState]
    STAGE_FAILED: _ClassVar[ChangeState]
    DEPLOYING: _ClassVar[ChangeState]
    DEPLOYED: _ClassVar[ChangeState]
    ROLLED_BACK: _ClassVar[ChangeState]

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    SNAPSHOT: _ClassVar[EventKind]
    WATCHING: _ClassVar[EventKind]
    TRANSITION: _ClassVar[EventKind]
    EVALUATED: _ClassVar[EventKind]
CHANGE_STATE_UNSPECIFIED: ChangeState
QUEUED: ChangeState
STAGING: ChangeState
STAGED: ChangeState
STAGE_FAILED: ChangeState
DEPLOYING: ChangeState
DEPLOYED: ChangeState
ROLLED_BACK: ChangeState
EVENT_KIND_UNSPECIFIED: EventKind
SNAPSHOT: EventKind
WATCHING: EventKind
TRANSITION: EventKind
EVALUATED: EventKind

class ListRecommendationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Recommendation(_message.Message):
    __slots__ = ("id", "resource", "template", "params_json", "action", "reason", "confidence", "deadline_s", "crossing_s", "capacity_mbps", "need_mbps", "unmet_mbps", "priority", "time_s", "change_id", "model")
    ID_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_S_FIELD_NUMBER: _ClassVar[int]
    CROSSING_S_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_MBPS_FIELD_NUMBER: _ClassVar[int]
    NEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    UNMET_MBPS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    id: str
    resource: str
    template: str
    params_json: str
    action: str
    reason: str
    confidence: float
    deadline_s: float
    crossing_s: float
    capacity_mbps: float
    need_mbps: float
    unmet_mbps: float
    priority: float
    time_s: float
    change_id: str
    model: str
    def __init__(self, id: _Optional[str] = ..., resource: _Optional[str] = ..., template: _Optional[str] = ..., params_json: _Optional[str] = ..., action: _Optional[str] = ..., reason: _Optional[str] = ..., confidence: _Optional[float] = ..., deadline_s: _Optional[float] = ..., crossing_s: _Optional[float] = ..., capacity_mbps: _Optional[float] = ..., need_mbps: _Optional[float] = ..., unmet_mbps: _Optional[float] = ..., priority: _Optional[float] = ..., time_s: _Optional[float] = ..., change_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class ListRecommendationsResponse(_message.Message):
    __slots__ = ("recommendations", "basis", "evaluated_s", "trigger")
    RECOMMENDATIONS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    EVALUATED_S_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    recommendations: _containers.RepeatedCompositeFieldContainer[Recommendation]
    basis: str
    evaluated_s: float
    trigger: str
    def __init__(self, recommendations: _Optional[_Iterable[_Union[Recommendation, _Mapping]]] = ..., basis: _Optional[str] = ..., evaluated_s: _Optional[float] = ..., trigger: _Optional[str] = ...) -> None: ...

class GetQueueRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class QueueResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    def __init__(self, changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ...) -> None: ...

class StageRequest(_message.Message):
    __slots__ = ("change_id", "recommendation_id", "template", "params_json", "crossing_s", "need_mbps")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    CROSSING_S_FIELD_NUMBER: _ClassVar[int]
    NEED_MBPS_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    recommendation_id: str
    template: str
    params_json: str
    crossing_s: float
    need_mbps: float
    def __init__(self, change_id: _Optional[str] = ..., recommendation_id: _Optional[str] = ..., template: _Optional[str] = ..., params_json: _Optional[str] = ..., crossing_s: _Optional[float] = ..., need_mbps: _Optional[float] = ...) -> None: ...

class DeployRequest(_message.Message):
    __slots__ = ("change_id",)
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    def __init__(self, change_id: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("change_id", "reason")
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    reason: str
    def __init__(self, change_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetChangeRequest(_message.Message):
    __slots__ = ("change_id",)
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    def __init__(self, change_id: _Optional[str] = ...) -> None: ...

class ListChangesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListChangesResponse(_message.Message):
    __slots__ = ("changes",)
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    changes: _containers.RepeatedCompositeFieldContainer[Change]
    def __init__(self, changes: _Optional[_Iterable[_Union[Change, _Mapping]]] = ...) -> None: ...

class Check(_message.Message):
    __slots__ = ("name", "ok", "detail", "duration_s")
    NAME_FIELD_NUMBER: _ClassVar[int]
    OK_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    name: str
    ok: bool
    detail: str
    duration_s: float
    def __init__(self, name: _Optional[str] = ..., ok: _Optional[bool] = ..., detail: _Optional[str] = ..., duration_s: _Optional[float] = ...) -> None: ...

class StagingReport(_message.Message):
    __slots__ = ("checks", "started_s", "finished_s", "updates")
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    STARTED_S_FIELD_NUMBER: _ClassVar[int]
    FINISHED_S_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    started_s: float
    finished_s: float
    updates: int
    def __init__(self, checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., started_s: _Optional[float] = ..., finished_s: _Optional[float] = ..., updates: _Optional[int] = ...) -> None: ...

class DeployRecord(_message.Message):
    __slots__ = ("started_s", "finished_s", "switches", "checks", "deployed_at_s", "before_crossing")
    STARTED_S_FIELD_NUMBER: _ClassVar[int]
    FINISHED_S_FIELD_NUMBER: _ClassVar[int]
    SWITCHES_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_AT_S_FIELD_NUMBER: _ClassVar[int]
    BEFORE_CROSSING_FIELD_NUMBER: _ClassVar[int]
    started_s: float
    finished_s: float
    switches: _containers.RepeatedScalarFieldContainer[str]
    checks: _containers.RepeatedCompositeFieldContainer[Check]
    deployed_at_s: float
    before_crossing: bool
    def __init__(self, started_s: _Optional[float] = ..., finished_s: _Optional[float] = ..., switches: _Optional[_Iterable[str]] = ..., checks: _Optional[_Iterable[_Union[Check, _Mapping]]] = ..., deployed_at_s: _Optional[float] = ..., before_crossing: _Optional[bool] = ...) -> None: ...

class RollbackRecord(_message.Message):
    __slots__ = ("started_s", "duration_s", "reason", "restored")
    STARTED_S_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESTORED_FIELD_NUMBER: _ClassVar[int]
    started_s: float
    duration_s: float
    reason: str
    restored: bool
    def __init__(self, started_s: _Optional[float] = ..., duration_s: _Optional[float] = ..., reason: _Optional[str] = ..., restored: _Optional[bool] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("measured_peak_mbps", "forecast_mbps", "previous_mbps", "promised_mbps", "needed", "held", "measured_s")
    MEASURED_PEAK_MBPS_FIELD_NUMBER: _ClassVar[int]
    FORECAST_MBPS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_MBPS_FIELD_NUMBER: _ClassVar[int]
    PROMISED_MBPS_FIELD_NUMBER: _ClassVar[int]
    NEEDED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    MEASURED_S_FIELD_NUMBER: _ClassVar[int]
    measured_peak_mbps: float
    forecast_mbps: float
    previous_mbps: float
    promised_mbps: float
    needed: bool
    held: bool
    measured_s: float
    def __init__(self, measured_peak_mbps: _Optional[float] = ..., forecast_mbps: _Optional[float] = ..., previous_mbps: _Optional[float] = ..., promised_mbps: _Optional[float] = ..., needed: _Optional[bool] = ..., held: _Optional[bool] = ..., measured_s: _Optional[float] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("id", "template", "params_json", "state", "summary", "recommendation_id", "created_s", "crossing_s", "mode", "staging", "deploy", "rollback", "outcome", "detail", "resource", "confidence")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_JSON_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_S_FIELD_NUMBER: _ClassVar[int]
    CROSSING_S_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STAGING_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_FIELD_NUMBER: _ClassVar[int]
    ROLLBACK_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    RESOURCE_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    template: str
    params_json: str
    state: ChangeState
    summary: str
    recommendation_id: str
    created_s: float
    crossing_s: float
    mode: str
    staging: StagingReport
    deploy: DeployRecord
    rollback: RollbackRecord
    outcome: Outcome
    detail: str
    resource: str
    confidence: float
    def __init__(self, id: _Optional[str] = ..., template: _Optional[str] = ..., params_json: _Optional[str] = ..., state: _Optional[_Union[ChangeState, str]] = ..., summary: _Optional[str] = ..., recommendation_id: _Optional[str] = ..., created_s: _Optional[float] = ..., crossing_s: _Optional[float] = ..., mode: _Optional[str] = ..., staging: _Optional[_Union[StagingReport, _Mapping]] = ..., deploy: _Optional[_Union[DeployRecord, _Mapping]] = ..., rollback: _Optional[_Union[RollbackRecord, _Mapping]] = ..., outcome: _Optional[_Union[Outcome, _Mapping]] = ..., detail: _Optional[str] = ..., resource: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Template(_message.Message):
    __slots__ = ("name", "version", "summary", "params_schema_json", "mode", "accuracy", "outcomes", "latest")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    PARAMS_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    LATEST_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    summary: str
    params_schema_json: str
    mode: str
    accuracy: float
    outcomes: int
    latest: bool
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., summary: _Optional[str] = ..., params_schema_json: _Optional[str] = ..., mode: _Optional[str] = ..., accuracy: _Optional[float] = ..., outcomes: _Optional[int] = ..., latest: _Optional[bool] = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ("templates",)
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[Template]
    def __init__(self, templates: _Optional[_Iterable[_Union[Template, _Mapping]]] = ...) -> None: ...

class WatchProvisioningRequest(_message.Message):
    __slots__ = ("change_id",)
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    change_id: str
    def __init__(self, change_id: _Optional[str] = ...) -> None: ...

class ProvisioningEvent(_message.Message):
    __slots__ = ("kind", "time_s", "change_id", "detail", "change")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TIME_S_FIELD_NUMBER: _ClassVar[int]
    CHANGE_ID_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    time_s: float
    change_id: str
    detail: str
    change: Change
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., time_s: _Optional[float] = ..., change_id: _Optional[str] = ..., detail: _Optional[str] = ..., change: _Optional[_Union[Change, _Mapping]] = ...) -> None: ...
