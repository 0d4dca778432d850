"""Streams in gRPC tests: waiting for a condition or the next message, and watchers
with small queues (to make one fall behind)."""

from __future__ import annotations

import concurrent.futures
import queue
import time

from controller import events


def wait_for(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def next_message(stream, timeout_s: float = 5.0):
    """The next message of a server stream, or TimeoutError (the stream is cancelled)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(next, stream)
        try:
            return future.result(timeout=timeout_s)
        except concurrent.futures.TimeoutError:
            stream.cancel()
            raise


def small_watch_queues(monkeypatch, size: int = 20) -> None:
    """Every new event-bus subscription gets a queue of ``size`` events."""
    real = events.Subscription
    monkeypatch.setattr(events, "Subscription",
                        lambda kinds, accept=None: real(kinds, accept, events=queue.Queue(maxsize=size)))
