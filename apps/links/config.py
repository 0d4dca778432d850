"""The ``links`` config section (``apps.links.app:provider`` in controller.providers)."""

from __future__ import annotations

from pydantic import Field, StrictInt, field_validator, model_validator

from os_ken.ofproto import ofproto_v1_3 as ofp

from controller.config import Section, key_error

# A switch as other apps take it: its name in topology.switches, or its dp_id (a
# number, or a string in decimal or 0x.. hex).
SwitchRef = StrictInt | str
Port = Field(ge=1, le=ofp.OFPP_MAX, strict=True)


class SpareConfig(Section):
    """One spare link: switch ``a``'s port ``a_port`` cabled to switch ``b``'s ``b_port``."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?$")
    a: SwitchRef
    a_port: int = Port
    b: SwitchRef
    b_port: int = Port

    @field_validator("a", "b", mode="before")
    @classmethod
    def _switch_ref(cls, value):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError(f"{value!r} is not a switch name or dp_id")
        return value

    @model_validator(mode="after")
    def _two_switches(self) -> "SpareConfig":
        for side in ("a", "b"):
            value = getattr(self, side)
            if isinstance(value, str) and not value.strip():
                raise key_error((side,), "empty; give a switch name or dp_id")
            if isinstance(value, int) and not 1 <= value < 2**64:
                raise key_error((side,), f"dp_id {value} is outside 1..2^64-1")
        if str(self.a) == str(self.b):
            raise key_error(("b",), f"the same switch as a ({self.a}): a spare joins two switches")
        return self


class LinksConfig(Section):
    """Spare links (``apps.links.app:provider`` in controller.providers)."""

    spares: tuple[SpareConfig, ...] = ()
    # SQLite file keeping which spares are in service; "" keeps it in memory only
    # (a restart then takes every spare out of service again).
    state_path: str = "/var/lib/foresight/links.sqlite"

    @model_validator(mode="after")
    def _distinct(self) -> "LinksConfig":
        names: dict[str, int] = {}
        ends: dict[tuple[str, int], tuple[int, str]] = {}
        for i, spare in enumerate(self.spares):
            if spare.name in names:
                raise key_error(("spares", i, "name"), f"duplicate spare name {spare.name!r} "
                                                       f"(also spares.{names[spare.name]})")
            names[spare.name] = i
            for side in ("a", "b"):
                end = (str(getattr(spare, side)), getattr(spare, f"{side}_port"))
                if end in ends:
                    j, other = ends[end]
                    raise key_error(("spares", i, f"{side}_port"),
                                    f"switch {end[0]} port {end[1]} is already spares.{j}.{other}_port")
                ends[end] = (i, side)
        return self
