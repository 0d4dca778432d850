"""Waiting in gRPC tests: for a condition, and for the next message of a server stream."""

from __future__ import annotations

import concurrent.futures
import time


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
