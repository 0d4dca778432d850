"""The ``qos`` config section (``apps.qos.app:provider`` in controller.providers)."""

from __future__ import annotations

from pydantic import Field, model_validator

from typing import Annotated

from controller.config import Section, key_error


QOS_MAX_RANK = 99           # ranks 0..99; apps.qos turns a rank into an OpenFlow priority


class QosClassConfig(Section):
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
            raise key_error(("dscp",), "a class needs at least one DSCP value unless it is the default")
        return self


class QosConfig(Section):
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
                raise key_error(("classes", i, "name"), f"duplicate class name {cls.name!r} "
                                                         f"(also classes.{names[cls.name]})")
            names[cls.name] = i
            for j, dscp in enumerate(cls.dscp):
                if dscp in owner:
                    other = owner[dscp]
                    where = "listed twice in this class" if other == i else \
                        f"already in class {self.classes[other].name!r} (classes.{other})"
                    raise key_error(("classes", i, "dscp", j), f"DSCP {dscp} is {where}")
                owner[dscp] = i
            if cls.default:
                if default is not None:
                    raise key_error(("classes", i, "default"), f"only one class may be the default; "
                                                                f"classes.{default} already is")
                default = i
        return self
