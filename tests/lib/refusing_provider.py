"""A provider for the integration tests whose VIP flow outputs to the port its caller
names, with an enforcing gRPC call, loaded by the controller process through
``controller.providers: [tests.lib.refusing_provider:provider]``.

On the test bridge (dp_id ``DP_ID``) it wants two slice-table flows: one that never
changes (``STEADY_IP`` out of port 1) and one for ``VIP_IP`` out of the port last
asked for. ``Want`` (service ``foresight.test.Outputs``, JSON in and out, no .proto)
sets that port, resyncs and answers once the switches confirmed it, like the slices
app's CreateSlice with ``enforce_timeout_s``, with that app's status codes. An
output to port 0x10000 is valid OpenFlow 1.3 (32-bit ports, below OFPP_MAX) and
FlowSpec takes it, but Open vSwitch numbers its ports in 16 bits below 0xff00 and
refuses the flow-mod (OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT): the realistic refusal
these tests need, since the meter builders cannot express the band OVS refuses
(dscp_remark).
"""

from __future__ import annotations

import json
import threading

import grpc

from apps.slices import SPEC as SLICES
from controller import cookies
from controller.appbase import App
from controller.api import EnforceLost, EnforceRefused, NotEnforced, arrival, wait_enforced
from controller.desired import Desired
from controller.flows import flow
from proto.serving import status_for

DP_ID = 0xAE
VIP_IP, STEADY_IP = "10.78.0.100", "10.78.0.1"
SERVICE = "foresight.test.Outputs"
METHOD = f"/{SERVICE}/Want"
COOKIE = cookies.cookie("slices", 1)
_CODES = {NotEnforced: grpc.StatusCode.DEADLINE_EXCEEDED, EnforceLost: grpc.StatusCode.UNAVAILABLE,
          EnforceRefused: grpc.StatusCode.FAILED_PRECONDITION}


def vip_flow(port: int):
    return flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": VIP_IP}, [("output", port)], cookie=COOKIE)


def steady_flow():
    return flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": STEADY_IP}, [("output", 1)], cookie=COOKIE)


class Outputs(App):
    """Stands in for the slices app (it registers the owner whose cookies this uses)."""

    name = SLICES.name

    def __init__(self, view, resync):
        super().__init__(view, resync)
        self.port: int | None = None
        self._lock = threading.Lock()

    def desired(self, dp_id: int, now: float) -> Desired:
        if dp_id != DP_ID:
            return Desired()
        port = self.port
        return Desired(flows=(steady_flow(),) + ((vip_flow(port),) if port is not None else ()))

    def want(self, request: dict, context) -> dict:
        arrived = arrival(self.view)
        with status_for(context, _CODES):
            with self._lock:
                self.port = int(request["port"])
            self.resync()
            return {"enforced_s": wait_enforced(self.view, arrived, float(request["enforce_timeout_s"]),
                                                f"output {self.port} is wanted and stays so")}

    def grpc_services(self):
        want = grpc.unary_unary_rpc_method_handler(self.want, request_deserializer=json.loads,
                                                   response_serializer=lambda d: json.dumps(d).encode())
        handler = grpc.method_handlers_generic_handler(SERVICE, {"Want": want})
        return [(SERVICE, lambda server: server.add_generic_rpc_handlers((handler,)))]


def provider(view, resync) -> Outputs:
    return Outputs(view, resync)
