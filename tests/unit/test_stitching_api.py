"""The stitching gRPC API over a real server: codes and messages a caller sees,
the policy's rule in PERMISSION_DENIED, route managers' advertisements and the
sites they make, and a watch that sees a stitch's life."""

from __future__ import annotations

import grpc
import pytest

from apps.stitching.api import services
from apps.stitching.client import StitchingClient
from proto import stitching_pb2 as pb
from proto.serving import build_server
from tests.lib.stitching_sites import DP, Env, _ad
from apps.stitching.api import _advertisement_pb


@pytest.fixture
def api():
    env = Env()
    (name, register), = services(env.m)
    server, port = build_server(name, register, "127.0.0.1:0", 4, "stitch-test", "stitching test server")
    server.start()
    client = StitchingClient(f"127.0.0.1:{port}")
    yield env, client
    client.close()
    server.stop(0)


def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), err.value.details()


def test_create_get_list_delete(api):
    env, client = api
    stitch = client.create("acme", "segment", 100, 200, id="web-db")
    assert (stitch.id, stitch.src_site, stitch.dst_site, stitch.plane, stitch.rule, stitch.state) == \
        ("web-db", "a", "b", 1, "acme-100-200", pb.STATE_ESTABLISHING)
    assert client.get("web-db").vni == stitch.vni
    assert [s.id for s in client.list("acme")] == ["web-db"] and client.list("globex") == []
    assert client.delete("web-db").id == "web-db"
    assert _code(lambda: client.get("web-db"))[0] == grpc.StatusCode.NOT_FOUND


def test_a_refusal_is_permission_denied_naming_the_rule(api):
    _, client = api
    with pytest.raises(grpc.RpcError) as err:
        client.create("acme", "segment", 100, 300)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "default-deny" in err.value.details()
    assert dict(err.value.trailing_metadata())["foresight-rule"] == "default-deny"


@pytest.mark.parametrize("kwargs, code, text", [
    ({"kind": "unknown"}, grpc.StatusCode.INVALID_ARGUMENT, "kind: required"),
    ({"kind": "segment", "bandwidth_mbps": -1}, grpc.StatusCode.INVALID_ARGUMENT, "bandwidth_mbps: must be"),
    ({"kind": "segment", "max_rtt_ms": float("nan")}, grpc.StatusCode.INVALID_ARGUMENT,
     "requirements.max_rtt_ms"),
    ({"kind": "segment", "id": "bad id!"}, grpc.StatusCode.INVALID_ARGUMENT, "id: 'bad id!'"),
    ({"kind": "segment", "min_mbps": 500}, grpc.StatusCode.FAILED_PRECONDITION, "no underlay path"),
])
def test_bad_requests_get_a_code_and_a_reason(api, kwargs, code, text):
    _, client = api
    kind = kwargs.pop("kind")
    got, details = _code(lambda: client.create("acme", kind, 100, 200, **kwargs))
    assert got == code and text in details
    assert client.list() == []


def test_query_lists_the_paths_on_offer_best_first(api):
    _, client = api
    answer = client.query("acme", 100, 200, min_mbps=10)
    assert (answer.src_site, answer.dst_site) == ("a", "b")
    assert [p.plane for p in answer.paths] == [1, 2] and answer.paths[0].available_mbps == 40.0


def test_advertise_answers_with_the_peers_and_a_bad_one_is_refused(api):
    env, client = api
    answer = client.stub.Advertise(_advertisement_pb(_ad("a")))
    assert {(p.site, p.plane) for p in answer.peers} == {("b", 1), ("b", 2), ("c", 1), ("c", 2)}
    bad = _advertisement_pb(_ad("a"))
    bad.hosts[0].vnid = 0
    code, details = _code(lambda: client.stub.Advertise(bad))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("hosts.0.vnid:")
    assert {s.advertisement.site for s in client.sites()} == set(DP)


def test_a_watch_sees_the_snapshot_then_the_stitch_come_and_go(api):
    env, client = api
    client.create("acme", "segment", 100, 200, id="first")
    stream = client.watch()
    kinds = []
    for event in stream:
        kinds.append((pb.StitchEventKind.Name(event.kind), event.stitch_id))
        if event.kind == pb.WATCHING:
            client.create("acme", "segment", 100, 200, id="second")
            client.delete("second")
        if event.kind == pb.DELETED:
            break
    stream.cancel()
    assert kinds == [("SNAPSHOT", "first"), ("WATCHING", ""), ("CREATED", "second"), ("DELETED", "second")]
