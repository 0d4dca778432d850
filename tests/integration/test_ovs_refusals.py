"""A flow-mod Open vSwitch refuses, against a real bridge (userspace datapath) and the
real controller process: the enforcing call fails at once with FAILED_PRECONDITION
naming the switch and the OpenFlow error, the refusal is counted (status and
/metrics), the bridge is dumped again and reconciled — it then holds exactly what it
held before without the flow whose change it refused — the refused flow is not sent
again, the other flows stay as they were, and a later output the bridge can take is
installed and confirmed. All of it with plain flow-mods and with
``controller.sync.bundles`` on.

The provider (``refusing_provider``) asks for an output to port 0x10000: OpenFlow 1.3
ports are 32-bit, OVS's are 16-bit below 0xff00, so OVS answers
OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import grpc
import pytest

from tests.lib import refusing_provider as refusing
from tests.lib.ovs_lab import controlled_bridge, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

SWITCH = f"s{refusing.DP_ID} (dp {refusing.DP_ID:016x})"
MOD_COUNTERS = ("flow_adds", "flow_deletes", "group_adds", "group_modifies", "group_deletes",
                "meter_adds", "meter_modifies", "meter_deletes")


@pytest.fixture(params=[False, True], ids=["plain", "bundles"])
def bridge(request):
    tag = f"{os.getpid() % 100000}"
    veths = [(f"fsr{tag}s{n}", f"fsr{tag}h{n}", n) for n in (1, 2)]
    # Packet-ins unmetered: no meter on the bridge. With bundles the refused flow-mod is
    # refused when added to its bundle, which is then discarded: the same refusal.
    config = {"controller": {"providers": ["tests.lib.refusing_provider:provider"],
                             "discovery": {"edge_after_s": 1.0, "packet_in_pps": 0},
                             "sync": {"bundles": request.param}}}
    with controlled_bridge(f"fsr{tag}", refusing.DP_ID, config, veths, no_ipv6=True) as parts:
        name, _, controller = parts
        channel = grpc.insecure_channel(controller.grpc_address)
        want = channel.unary_unary(refusing.METHOD, request_serializer=lambda d: json.dumps(d).encode(),
                                   response_deserializer=json.loads)
        try:
            yield name, controller, lambda port: want({"port": port, "enforce_timeout_s": 10.0}, timeout=20.0)
        finally:
            channel.close()


def _flows(bridge: str) -> list[str]:
    out = run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge)
    return sorted(line.strip() for line in out.splitlines()[1:] if line.strip())


def _vip(flows: list[str]) -> list[str]:
    return [f for f in flows if f"nw_dst={refusing.VIP_IP}" in f]


def _edges_known(controller) -> bool:
    """Both ports are edge ports (edge_after_s): the flood table has settled."""
    switches = controller.client.topology().switches
    return bool(switches) and all(port.is_edge for port in switches[0].ports)


def _counters(controller) -> dict:
    return dict(controller.client.status().counters)


def _metric(controller, name: str, kind: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.metrics_port}/metrics", timeout=5) as page:
        for line in page.read().decode().splitlines():
            if line.startswith(f'{name}{{kind="{kind}"}} '):
                return float(line.split()[-1])
    raise AssertionError(f"{name}{{kind={kind!r}}} not exported")


def test_a_flow_mod_ovs_refuses_fails_the_enforcing_call_and_the_bridge_is_reconciled(bridge):
    name, controller, want = bridge
    wait_for(lambda: _counters(controller).get("reconciliations", 0) >= 1, what="the bridge reconciled")
    wait_for(lambda: _edges_known(controller), what="both ports known as edge ports")
    time.sleep(0.5)                                     # their flood flows are in

    assert want(2)["enforced_s"] > 0                    # a port the bridge has: confirmed
    before = _flows(name)
    (vip,) = _vip(before)
    assert vip.endswith("actions=output:2")
    steady = [f for f in before if f"nw_dst={refusing.STEADY_IP}" in f]
    assert steady and steady[0].endswith("actions=output:1")
    counters = _counters(controller)
    assert counters.get("openflow_errors", 0) == 0

    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        want(0x10000)                                   # OVS refuses the change
    assert time.monotonic() - started < 5.0             # no waiting out enforce_timeout_s
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert err.value.details() == (
        f"{SWITCH} refused flow {refusing.vip_flow(0x10000).describe()}: "
        f"OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT; "
        f"output 65536 is wanted and stays so in the controller's intent (the switch is reconciled without "
        f"what it refused, until that intent changes)")

    # Counted, and dumped again: reconciled against what the bridge held (the old
    # flow, kept when it refused the change), without the refused value.
    wait_for(lambda: _counters(controller).get("reconciliations", 0) >= counters["reconciliations"] + 1,
             what="the bridge reconciled again")
    after = _counters(controller)
    assert (after["openflow_refusals"], after["openflow_errors"]) == (1, 1)
    assert _metric(controller, "foresight_errors_total", "openflow_refusals") == 1
    wait_for(lambda: not _vip(_flows(name)), timeout_s=5.0, what="the VIP key left out")
    assert _flows(name) == [f for f in before if f != vip]      # everything else as it was

    # Not sent again: no refusal loop, no more changes.
    time.sleep(2.0)
    settled = _counters(controller)
    assert settled["openflow_refusals"] == 1
    assert {k: settled.get(k, 0) for k in MOD_COUNTERS} == {k: after.get(k, 0) for k in MOD_COUNTERS}
    assert settled["reconciliations"] == after["reconciliations"]

    # Another output, one the bridge has: sent, confirmed, installed.
    assert want(1)["enforced_s"] > 0
    (vip,) = _vip(_flows(name))
    assert vip.endswith("actions=output:1")
    assert _flows(name) == sorted([f for f in before if f != _vip(before)[0]] + [vip])
    assert _counters(controller)["openflow_refusals"] == 1
