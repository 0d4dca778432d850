"""What every Foresight gRPC server and client share: domain errors mapped to
status codes in one place, a server with the standard health and reflection
services, waiting for a server to report SERVING, and the client base class
(channel, health stub, context manager)."""

from __future__ import annotations

import contextlib
import time
from concurrent import futures
from typing import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

HEALTH_SERVICE = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name


@contextlib.contextmanager
def status_for(context: grpc.ServicerContext, codes: dict[type, grpc.StatusCode]):
    """Turn a domain exception of one of ``codes``' types into that status code."""
    try:
        yield
    except tuple(codes) as err:
        for kind, code in codes.items():
            if isinstance(err, kind):
                context.abort(code, str(err))
        raise


def build_server(service_name: str, register: Callable[[grpc.Server], None], address: str,
                 max_workers: int, thread_name_prefix: str, what: str,
                 options: list[tuple[str, object]] | None = None,
                 extra_services: Sequence[str] = ()) -> tuple[grpc.Server, int]:
    """A server with ``register``'s services (``service_name`` and ``extra_services``)
    plus health (SERVING) and reflection, bound to ``address``; returns (server, bound port)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix=thread_name_prefix),
                         options=options or [])
    register(server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in (service_name, *extra_services, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (service_name, *extra_services, HEALTH_SERVICE, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot bind {what} to {address}")
    return server, port


def wait_serving(health_stub, what: str, timeout_s: float, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll the health service until SERVING; ``alive()`` False aborts early."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not alive():
            raise TimeoutError(f"{what} exited before serving")
        try:
            if health_stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=1.0).status == \
                    health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.RpcError as err:
            last = err
        time.sleep(0.1)
    raise TimeoutError(f"{what} not serving after {timeout_s} s ({last})")


class ServiceClient:
    """Base of the Foresight clients: one channel, the service stub and its health stub.

    Subclasses set ``stub_class`` and ``what`` (for messages) and add one method per rpc."""

    stub_class: type
    what = "service"
    ready_timeout_s = 20.0

    def __init__(self, address: str, timeout_s: float = 5.0, options: list[tuple[str, object]] | None = None):
        self.address = address
        self.timeout_s = timeout_s
        self.channel = grpc.insecure_channel(address, options=options or [])
        self.stub = self.stub_class(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_ready(self, timeout_s: float | None = None, alive: Callable[[], bool] = lambda: True) -> None:
        """Until the health service says SERVING; ``alive()`` False aborts early."""
        wait_serving(self.health, f"{self.what} at {self.address}", timeout_s or self.ready_timeout_s, alive)
