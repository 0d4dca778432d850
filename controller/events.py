"""Topology and host events, and the bus that fans them out to watchers.

The core appends events as it changes state; the northbound API's WatchEvents
streams them. Each subscriber has a bounded queue: a watcher that stops reading is
dropped (and told so by the end of its stream) instead of growing memory forever.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

LOG = logging.getLogger(__name__)

KINDS = ("SWITCH_ENTER", "SWITCH_LEAVE", "PORT_UP", "PORT_DOWN", "LINK_ADD", "LINK_DELETE",
         "HOST_ADD", "HOST_MOVE", "PATH_CHANGE")


@dataclass(frozen=True)
class Event:
    kind: str
    time: float
    dp_id: int = 0
    port_no: int = 0
    link: tuple[int, int, int, int] | None = None     # src_dp, src_port, dst_dp, dst_port
    host_mac: str = ""
    detail: str = ""


@dataclass
class Subscription:
    kinds: frozenset[str]                               # empty: every kind
    accept: Callable[[Any], bool] | None = None         # and only events this accepts
    events: "queue.Queue[Any]" = field(default_factory=lambda: queue.Queue(maxsize=10000))
    overflowed: bool = False

    def wants(self, event: Any) -> bool:
        return (not self.kinds or event.kind in self.kinds) and (self.accept is None or self.accept(event))


def describe(event: Event) -> str:
    return (f"event {event.kind} dp={event.dp_id} port={event.port_no} link={event.link} "
            f"host={event.host_mac} {event.detail}")


class EventBus:
    """Fans events out to subscribers. Any event with a ``kind`` will do (apps publish
    their own kinds); ``describe`` makes its log line."""

    def __init__(self, describe: Callable[[Any], str] = describe):
        self._describe = describe
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self.published = 0

    def subscribe(self, kinds: frozenset[str] = frozenset(), accept: Callable[[Any], bool] | None = None
                  ) -> Subscription:
        """Events of ``kinds`` (all if empty) that ``accept`` (if given) returns True for;
        the rest never reach the subscriber's queue."""
        sub = Subscription(kinds, accept)
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        with self._lock:
            subs = list(self._subs)
            self.published += len(events)
        for event in events:
            LOG.info("%s", self._describe(event))
            for sub in subs:
                if not sub.wants(event):
                    continue
                try:
                    sub.events.put_nowait(event)
                except queue.Full:
                    sub.overflowed = True
                    self.unsubscribe(sub)

    def close(self) -> None:
        with self._lock:
            subs, self._subs = self._subs, []
        for sub in subs:
            try:
                sub.events.put_nowait(None)
            except queue.Full:
                pass

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)
