"""Tests for the northbound gRPC API (controller.api) through controller.client,
against a real server on a free port over a core populated by a FakeNetwork."""


import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from controller.api import SERVICE_NAME, create_server
from controller.client import ControllerClient
from controller.events import Event
from proto import controller_pb2 as pb

from tests.lib.fakeoftable import diamond, ipv4_frame
from tests.lib.streams import next_message, small_watch_queues, wait_for

CAPACITIES = {(1, 2): 1000.0, (2, 4): 1000.0, (1, 3): 9920.0, (3, 4): 2480.0}


@pytest.fixture
def net():
    network = diamond(CAPACITIES)
    network.announce("h1", "h4")
    return network


@pytest.fixture
def client(net):
    server, port, servicer = create_server(net.core, "127.0.0.1:0", max_workers=4)
    server.start()
    api = ControllerClient(f"127.0.0.1:{port}", timeout_s=5.0)
    yield api
    api.close()
    servicer.stopping = True
    server.stop(grace=None).wait(5)






def test_get_topology_lists_switches_and_directed_links_with_metadata_capacity(client):
    topo = client.topology()
    assert [(s.dp_id, s.name) for s in topo.switches] == [(1, "s1"), (2, "s2"), (3, "s3"), (4, "s4")]
    s1 = topo.switches[0]
    assert [(p.port_no, p.is_edge) for p in s1.ports] == [(1, False), (2, False), (3, True)]
    links = {(link.src_dp_id, link.dst_dp_id): link for link in topo.links}
    assert len(topo.links) == 8
    for (a, b), mbps in CAPACITIES.items():
        for key in ((a, b), (b, a)):
            assert links[key].capacity_mbps == mbps
            assert links[key].capacity_source == "metadata"
    assert links[(1, 2)].name == "1:1-2:1"
    assert (links[(1, 2)].src_port, links[(1, 2)].dst_port) == (1, 1)


def test_list_hosts(client, net):
    hosts = client.hosts()
    assert [(h.mac, list(h.ipv4), h.dp_id, h.port_no) for h in hosts] == [
        (net.host("h1").mac, ["10.0.0.1"], 1, 3), (net.host("h4").mac, ["10.0.0.2"], 4, 3)]
    assert [h.mac for h in client.hosts(dp_id=4)] == [net.host("h4").mac]
    assert client.hosts(dp_id=2) == []


def test_get_path_between_hosts_lists_hops_in_order(client, net):
    path = client.path("10.0.0.1", "10.0.0.2")
    assert [(h.dp_id, h.name, h.in_port, h.out_port) for h in path.hops] == [
        (1, "s1", 3, 1), (2, "s2", 1, 2), (4, "s4", 1, 3)]
    assert path.cost == 2.0
    assert not path.installed
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))
    assert client.path(net.host("h1").mac, "10.0.0.2").installed


def test_get_path_between_switches_by_name_and_dp_id(client):
    path = client.path("s4", "1")
    assert [h.dp_id for h in path.hops] == [4, 2, 1]


@pytest.mark.parametrize("src, dst, field", [("", "10.0.0.2", "src"), ("10.0.0.1", "  ", "dst")])
def test_get_path_with_an_empty_end_is_invalid_argument(client, src, dst, field):
    with pytest.raises(grpc.RpcError) as err:
        client.path(src, dst)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{field}:")


@pytest.mark.parametrize("src", ["10.9.9.9", "02:00:00:00:00:99", "s9", "77"])
def test_get_path_to_something_unknown_is_not_found_naming_it(client, src):
    with pytest.raises(grpc.RpcError) as err:
        client.path(src, "10.0.0.2")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert src in err.value.details()
    assert err.value.details().startswith("src:")


def test_get_path_without_a_route_is_not_found(client, net):
    net.link_down(1, 1)
    net.link_down(1, 2)
    with pytest.raises(grpc.RpcError) as err:
        client.path("10.0.0.1", "10.0.0.2")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_watch_events_sees_a_link_delete_after_port_down(client, net):
    stream = client.watch(["LINK_DELETE"])
    try:
        wait_for(lambda: net.core.bus.subscribers == 1)
        net.set_port(2, 2, up=False)
        first, second = next_message(stream), next_message(stream)
    finally:
        stream.cancel()
    assert {first.kind, second.kind} == {pb.LINK_DELETE}
    assert {first.link.name, second.link.name} == {"2:2-4:1", "4:1-2:2"}
    assert first.detail == "port down"
    wait_for(lambda: net.core.bus.subscribers == 0)


def test_watch_events_without_kinds_gets_everything(client, net):
    stream = client.watch()
    try:
        wait_for(lambda: net.core.bus.subscribers == 1)
        net.set_port(2, 2, up=False)
        kinds = [next_message(stream).kind for _ in range(3)]
    finally:
        stream.cancel()
    assert kinds == [pb.PORT_DOWN, pb.LINK_DELETE, pb.LINK_DELETE]


@pytest.mark.parametrize("kind", [pb.EVENT_KIND_UNSPECIFIED, 42])
def test_watch_events_with_an_invalid_kind_is_invalid_argument(client, kind):
    stream = client.stub.WatchEvents(pb.WatchEventsRequest(kinds=[kind]), timeout=5.0)
    with pytest.raises(grpc.RpcError) as err:
        next(stream)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("kinds:")


def test_watcher_that_falls_behind_is_told_so(client, net, monkeypatch):
    small_watch_queues(monkeypatch)
    stream = client.stub.WatchEvents(pb.WatchEventsRequest(kinds=[pb.HOST_ADD]), timeout=10.0)
    wait_for(lambda: net.core.bus.subscribers == 1)
    burst = [Event("HOST_ADD", float(i), host_mac=f"02:00:00:00:{i >> 8:02x}:{i & 0xff:02x}")
             for i in range(5000)]
    net.core.bus.publish(burst)                 # far more than the watcher may queue
    assert net.core.bus.subscribers == 0
    received = 0
    with pytest.raises(grpc.RpcError) as err:
        for _ in stream:
            received += 1
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watch again" in err.value.details()
    assert 0 < received < len(burst)


def test_get_status_counts(client, net):
    status = client.status()
    assert (status.switches, status.links, status.hosts) == (4, 8, 2)
    assert status.mode == "reactive"
    assert status.counters["reconciliations"] == 4


def test_health_service_is_serving(client):
    for service in ("", SERVICE_NAME):
        reply = client.health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5.0)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    client.wait_ready(timeout_s=2.0)


def test_reflection_lists_the_controller_service(client):
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=5.0)
    services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert SERVICE_NAME == "foresight.v1.Controller"
    assert {"foresight.v1.Controller", "grpc.health.v1.Health"} <= services
