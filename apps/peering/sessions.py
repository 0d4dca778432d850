"""Each neighbour's session: a small state machine with the reason for every step.

Pure: ``Session`` is a record; ``step`` moves it and returns the event describing
the move, or None when nothing changed. The manager drives it from the plan (want
up or down), from the BGP speaker's peer states and from operator overrides::

    CANDIDATE --want up--> REQUESTED --provisioned--> CONNECTING --bgp up--> ESTABLISHED
        ^                                                  |                 |   ^
        |                                             want down          bgp down |
        +---------------- WITHDRAWING <--want down--------+-----------      v   |
                                                                          DOWN -+
    any configured state --max-prefix exceeded--> TORN_DOWN (until an override or release)

A session the speaker cannot be asked about (GoBGP unreachable) keeps its state; the
manager reports the app degraded instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

STATES = ("CANDIDATE", "REQUESTED", "CONNECTING", "ESTABLISHED", "WITHDRAWING", "DOWN", "TORN_DOWN")
CONFIGURED = frozenset({"CONNECTING", "ESTABLISHED", "DOWN"})  # the speaker has the peer
WANTED = frozenset({"REQUESTED", "CONNECTING", "ESTABLISHED", "DOWN"})
OVERRIDES = ("none", "up", "down")


@dataclass
class Sla:
    committed_mbps: float = 0.0
    max_latency_ms: float = 0.0
    requested_at: float = 0.0  # app clock


@dataclass
class Session:
    name: str
    state: str = "CANDIDATE"
    detail: str = "no session asked for yet"
    since: float = 0.0  # app clock
    override: str = "none"
    sla: Sla = field(default_factory=Sla)
    up_at: float = 0.0  # app clock of the last ESTABLISHED
    lead_s: float = 0.0  # the last bring-up: demand arrival - up_at (app clock), when known
    drops: int = 0  # sessions lost while wanted

    def as_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "Session":
        data = dict(data)
        sla = Sla(**{k: v for k, v in (data.pop("sla", None) or {}).items() if k in Sla.__dataclass_fields__})
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        session = cls(**known, sla=sla)
        if session.state not in STATES:
            session.state, session.detail = "CANDIDATE", f"unknown stored state {data.get('state')!r}"
        return session

    @property
    def wanted(self) -> bool:
        return self.state in WANTED

    @property
    def established(self) -> bool:
        return self.state == "ESTABLISHED"


@dataclass(frozen=True)
class SessionEvent:
    kind: str  # "SESSION" (the bus kind)
    time: float
    name: str
    old: str
    new: str
    detail: str


def step(session: Session, new: str, detail: str, now: float) -> SessionEvent | None:
    """Move ``session`` to ``new`` (with the reason); None when it is there already."""
    if new not in STATES:
        raise ValueError(f"state: {new!r} is not one of {', '.join(STATES)}")
    if session.state == new and session.detail == detail:
        return None
    old = session.state
    session.state, session.detail = new, detail
    if old != new:
        session.since = now
    if new == "ESTABLISHED" and old != "ESTABLISHED":
        session.up_at = now
    return SessionEvent("SESSION", now, session.name, old, new, detail)


def after_bgp(session: Session, bgp_state: str, reason: str, now: float) -> SessionEvent | None:
    """The speaker says the peer is in ``bgp_state`` (lower-case FSM state); ``reason``
    is its shutdown reason, e.g. a max-prefix teardown."""
    if session.state not in CONFIGURED:
        return None
    if bgp_state == "established":
        return step(session, "ESTABLISHED", "session established, routes learned", now)
    if reason and "prefix" in reason.lower():
        return step(session, "TORN_DOWN", f"torn down by the speaker: {reason}", now)
    if session.state == "ESTABLISHED":
        session.drops += 1
        why = f"session dropped (BGP {bgp_state}{': ' + reason if reason else ''})"
        return step(session, "DOWN", why, now)
    return None
