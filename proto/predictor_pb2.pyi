from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Sample(_message.Message):
    __slots__ = ("series_id", "timestamp_s", "value", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_S_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    timestamp_s: float
    value: float
    labels: _containers.ScalarMap[str, str]
    def __init__(self, series_id: _Optional[str] = ..., timestamp_s: _Optional[float] = ..., value: _Optional[float] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SampleBatch(_message.Message):
    __slots__ = ("samples",)
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[Sample]
    def __init__(self, samples: _Optional[_Iterable[_Union[Sample, _Mapping]]] = ...) -> None: ...

class IngestSummary(_message.Message):
    __slots__ = ("accepted", "series", "latest_timestamp_s")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    LATEST_TIMESTAMP_S_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    series: int
    latest_timestamp_s: float
    def __init__(self, accepted: _Optional[int] = ..., series: _Optional[int] = ..., latest_timestamp_s: _Optional[float] = ...) -> None: ...

class ForecastRequest(_message.Message):
    __slots__ = ("series_ids", "horizons_s", "quantiles")
    SERIES_IDS_FIELD_NUMBER: _ClassVar[int]
    HORIZONS_S_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    series_ids: _containers.RepeatedScalarFieldContainer[str]
    horizons_s: _containers.RepeatedScalarFieldContainer[float]
    quantiles: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, series_ids: _Optional[_Iterable[str]] = ..., horizons_s: _Optional[_Iterable[float]] = ..., quantiles: _Optional[_Iterable[float]] = ...) -> None: ...

class QuantileValue(_message.Message):
    __slots__ = ("quantile", "value")
    QUANTILE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    quantile: float
    value: float
    def __init__(self, quantile: _Optional[float] = ..., value: _Optional[float] = ...) -> None: ...

class SeriesForecast(_message.Message):
    __slots__ = ("series_id", "horizon_s", "origin_s", "target_s", "mean", "quantiles", "model", "degraded", "degraded_reason")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    HORIZON_S_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_S_FIELD_NUMBER: _ClassVar[int]
    TARGET_S_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    QUANTILES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    horizon_s: float
    origin_s: float
    target_s: float
    mean: float
    quantiles: _containers.RepeatedCompositeFieldContainer[QuantileValue]
    model: str
    degraded: bool
    degraded_reason: str
    def __init__(self, series_id: _Optional[str] = ..., horizon_s: _Optional[float] = ..., origin_s: _Optional[float] = ..., target_s: _Optional[float] = ..., mean: _Optional[float] = ..., quantiles: _Optional[_Iterable[_Union[QuantileValue, _Mapping]]] = ..., model: _Optional[str] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[str] = ...) -> None: ...

class ForecastResponse(_message.Message):
    __slots__ = ("forecasts", "model_version")
    FORECASTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    forecasts: _containers.RepeatedCompositeFieldContainer[SeriesForecast]
    model_version: str
    def __init__(self, forecasts: _Optional[_Iterable[_Union[SeriesForecast, _Mapping]]] = ..., model_version: _Optional[str] = ...) -> None: ...

class TrainRequest(_message.Message):
    __slots__ = ("horizons_s", "validation_steps")
    HORIZONS_S_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_STEPS_FIELD_NUMBER: _ClassVar[int]
    horizons_s: _containers.RepeatedScalarFieldContainer[float]
    validation_steps: int
    def __init__(self, horizons_s: _Optional[_Iterable[float]] = ..., validation_steps: _Optional[int] = ...) -> None: ...

class TrainJob(_message.Message):
    __slots__ = ("job_id", "state", "progress", "message", "model_version", "started_s", "finished_s")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        STATE_UNSPECIFIED: _ClassVar[TrainJob.State]
        PENDING: _ClassVar[TrainJob.State]
        RUNNING: _ClassVar[TrainJob.State]
        SUCCEEDED: _ClassVar[TrainJob.State]
        FAILED: _ClassVar[TrainJob.State]
    STATE_UNSPECIFIED: TrainJob.State
    PENDING: TrainJob.State
    RUNNING: TrainJob.State
    SUCCEEDED: TrainJob.State
    FAILED: TrainJob.State
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    STARTED_S_FIELD_NUMBER: _ClassVar[int]
    FINISHED_S_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    state: TrainJob.State
    progress: float
    message: str
    model_version: str
    started_s: float
    finished_s: float
    def __init__(self, job_id: _Optional[str] = ..., state: _Optional[_Union[TrainJob.State, str]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., model_version: _Optional[str] = ..., started_s: _Optional[float] = ..., finished_s: _Optional[float] = ...) -> None: ...

class WatchTrainingRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("version", "active", "trained_at_s", "span_start_s", "span_end_s", "horizons_s", "series", "validation_mae", "chosen")
    class ValidationMaeEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    class ChosenEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    TRAINED_AT_S_FIELD_NUMBER: _ClassVar[int]
    SPAN_START_S_FIELD_NUMBER: _ClassVar[int]
    SPAN_END_S_FIELD_NUMBER: _ClassVar[int]
    HORIZONS_S_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_MAE_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    version: str
    active: bool
    trained_at_s: float
    span_start_s: float
    span_end_s: float
    horizons_s: _containers.RepeatedScalarFieldContainer[float]
    series: int
    validation_mae: _containers.ScalarMap[str, float]
    chosen: _containers.ScalarMap[str, int]
    def __init__(self, version: _Optional[str] = ..., active: _Optional[bool] = ..., trained_at_s: _Optional[float] = ..., span_start_s: _Optional[float] = ..., span_end_s: _Optional[float] = ..., horizons_s: _Optional[_Iterable[float]] = ..., series: _Optional[int] = ..., validation_mae: _Optional[_Mapping[str, float]] = ..., chosen: _Optional[_Mapping[str, int]] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class AnomaliesRequest(_message.Message):
    __slots__ = ("series_ids", "since_s", "min_score")
    SERIES_IDS_FIELD_NUMBER: _ClassVar[int]
    SINCE_S_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    series_ids: _containers.RepeatedScalarFieldContainer[str]
    since_s: float
    min_score: float
    def __init__(self, series_ids: _Optional[_Iterable[str]] = ..., since_s: _Optional[float] = ..., min_score: _Optional[float] = ...) -> None: ...

class AnomalyScore(_message.Message):
    __slots__ = ("series_id", "timestamp_s", "value", "expected", "lower", "upper", "score", "anomalous")
    SERIES_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_S_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    ANOMALOUS_FIELD_NUMBER: _ClassVar[int]
    series_id: str
    timestamp_s: float
    value: float
    expected: float
    lower: float
    upper: float
    score: float
    anomalous: bool
    def __init__(self, series_id: _Optional[str] = ..., timestamp_s: _Optional[float] = ..., value: _Optional[float] = ..., expected: _Optional[float] = ..., lower: _Optional[float] = ..., upper: _Optional[float] = ..., score: _Optional[float] = ..., anomalous: _Optional[bool] = ...) -> None: ...

class AnomaliesResponse(_message.Message):
    __slots__ = ("scores", "model_version")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[AnomalyScore]
    model_version: str
    def __init__(self, scores: _Optional[_Iterable[_Union[AnomalyScore, _Mapping]]] = ..., model_version: _Optional[str] = ...) -> None: ...
