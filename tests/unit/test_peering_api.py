"""The peering API and the ``foresight peering`` commands against a real gRPC server
whose peering app runs on the core and a fake edge switch: what an operator reads,
and the status code and message when they ask for nonsense."""

from __future__ import annotations

import grpc
import pytest

from apps.peering.api import services
from apps.peering.client import PeeringClient
from controller.api import create_server
from labs import cli
from proto import peering_pb2 as pb
from tests.lib.peering_edge import make_app, make_net


@pytest.fixture
def served():
    net = make_net()
    app, speaker = make_app(net, "plain_bgp")
    app.plan(0.0, "test")
    server, port, servicer = create_server(net.core, "127.0.0.1:0", max_workers=2, services=services(app))
    server.start()
    yield app, speaker, f"127.0.0.1:{port}"
    servicer.stopping = True
    app.stopping()
    server.stop(grace=None).wait(5)


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_and_plan_show_sessions_and_where_each_group_leaves(served, capsys):
    _, _, address = served
    code, out, _ = _run(capsys, "--controller", address, "peering", "list")
    assert code == 0
    west = next(line for line in out.splitlines() if line.startswith("west"))
    assert "AS64501" in west and "ESTABLISHED" in west and "2 prefixes" in west
    code, out, _ = _run(capsys, "--controller", address, "peering", "plan")
    assert code == 0 and out.startswith("scheme plain_bgp")
    assert any(line.split()[0] == "west" and "1 groups" in line for line in out.splitlines()[1:3])


def test_overrides_over_grpc_and_their_refusals(served, capsys):
    app, speaker, address = served
    with PeeringClient(address) as client:
        assert client.withdraw("west").override == pb.FORCE_DOWN
        assert client.list()[1].state == pb.CANDIDATE
        with pytest.raises(grpc.RpcError) as err:
            client.establish("north")
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and "'north'" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            client.withdraw("transit")
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "only transit" in err.value.details()
        with pytest.raises(grpc.RpcError) as err:
            client.release("")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "name" in err.value.details()
        plan = client.plan(decisions=5)
        assert plan.decisions[0].kind == "override"
    code, _, err = _run(capsys, "--controller", address, "peering", "establish", "north")
    assert code == 1 and "NOT_FOUND" in err


def test_watch_starts_with_a_snapshot_of_every_neighbour(served):
    _, _, address = served
    with PeeringClient(address) as client:
        stream = client.watch(timeout_s=5)
        first = [next(stream) for _ in range(3)]
        stream.cancel()
    assert [e.kind for e in first] == [pb.SNAPSHOT, pb.SNAPSHOT, pb.WATCHING]
    assert {e.name for e in first[:2]} == {"transit", "west"}
