"""The slices gRPC API (apps.slices.api) through apps.slices.client, against a real server
on a free port over a SliceManager with a state file: what a user of the API sees."""

from __future__ import annotations

import math
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from apps.slices.api import SERVICE_NAME
from apps.slices.client import SlicesClient
from apps.slices.manager import EVENT_KINDS, SliceEvent, SliceManager
from apps.slices.scaling import ScalingDecision
from apps.slices.store import SliceStore
from controller.api import create_server
from controller.config import Config
from controller.core import ControllerCore, SyncBarrier
from tests.lib.fakeoftable import FakeNetwork, TRIANGLE_LINKS, config_for, hosts_on
from proto import slices_pb2 as pb
from tests.lib.streams import next_message, small_watch_queues, wait_for

NOW = 1_000_000.0                                    # the manager's clock: drain deadlines are exact
HOSTS = [(f"h{n}", f"10.0.0.{n}") for n in range(1, 9)]
WEB = {"client": "ACME", "vip_cidr": "10.20.0.0/24", "bandwidth_mbps": 100.0, "per_member_mbps": 10.0,
       "pool": "edge", "max_members": 10, "priority": "gold"}


class _Controller:
    """A controller core with a slices manager on ``path``, serving the gRPC API on a free port."""

    def __init__(self, path, drain_s: float, register: bool):
        self.core = ControllerCore(Config())
        self.manager = SliceManager(self.core.view, store=SliceStore(path), drain_s=drain_s,
                                    clock=lambda: NOW, auto_drain=False)
        if register:
            for n, (host_id, ipv4) in enumerate(HOSTS):
                self.manager.register_member("edge", host_id, ipv4, {"rack": f"r{n % 2}"})
        self.server, port, _ = create_server(self.core, "127.0.0.1:0", 4,
                                             self.manager.grpc_services())
        self.server.start()
        self.client = SlicesClient(f"127.0.0.1:{port}", timeout_s=5.0)

    def stop(self) -> None:
        self.client.close()
        self.manager.bus.close()
        self.server.stop(grace=None).wait(5)
        self.manager.close()


@pytest.fixture
def serve(tmp_path):
    """start(drain_s=30, register=True) -> a running _Controller on tmp_path/slices.db."""
    running = []

    def start(drain_s: float = 30.0, register: bool = True) -> _Controller:
        running.append(_Controller(tmp_path / "slices.db", drain_s, register))
        return running[-1]
    yield start
    for ctl in running:
        ctl.stop()


@pytest.fixture
def ctl(serve):
    return serve()


@pytest.fixture
def client(ctl):
    return ctl.client


def _members(slice_: pb.Slice) -> list[tuple]:
    return [(m.host_id, m.ipv4, m.vip, m.draining_until_s) for m in slice_.members]


def _owners(client: SlicesClient) -> dict[str, str]:
    return {m.host_id: m.slice_name for m in client.list_members()}


class _Network:
    """The API over a fake triangle whose switches hold every barrier until ``answer``:
    the slices manager resyncs into it under the core's lock, as the controller shell does.
    Members m1 (s2) and m2 (s3) are placed, so a slice puts meters, groups and flows on
    every switch."""

    def __init__(self, path):
        self.net = FakeNetwork(TRIANGLE_LINKS, hosts_on(("c1", 1, 3), ("m1", 2, 3), ("m2", 3, 3)),
                               config_for(TRIANGLE_LINKS))
        self.net.ANSWER_BARRIERS = False
        self.net.start()
        self.core = self.net.core
        self.manager = SliceManager(self.core.view, self._resync, SliceStore(path), drain_s=30.0,
                                    clock=lambda: NOW, auto_drain=False)
        self.core.add_provider(self.manager)
        for name in ("m1", "m2"):
            self.manager.register_member("edge", name, self.net.host(name).ip)
        self.net.announce("c1", "m1", "m2")
        self.answer()
        self.server, port, _ = create_server(self.core, "127.0.0.1:0", 4, self.manager.grpc_services())
        self.server.start()
        self.client = SlicesClient(f"127.0.0.1:{port}", timeout_s=5.0)
        self._answering = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._answer_loop, daemon=True).start()

    def _resync(self) -> None:
        with self.core.lock:
            self.net.deliver(self.core.resync(self.net.now))

    def answer(self) -> None:
        """Every switch answers the barriers it was sent."""
        with self.core.lock:
            for dp_id, msg in self.net.sent:
                if isinstance(msg, SyncBarrier) and dp_id in self.net.connected:
                    # A reply may release held deletions: they go to the switches too.
                    self.net.deliver(self.core.barrier_replied(dp_id, msg.generation, self.net.now))

    def answer_after(self, delay_s: float) -> None:
        """From ``delay_s`` on, switches answer barriers as they come."""
        threading.Timer(delay_s, self._answering.set).start()

    def _answer_loop(self) -> None:
        while not self._stop.wait(0.02):
            if self._answering.is_set():
                self.answer()

    def stop(self) -> None:
        self._stop.set()
        self.client.close()
        self.manager.bus.close()
        self.server.stop(grace=None).wait(5)
        self.manager.close()


@pytest.fixture
def network(tmp_path):
    running = _Network(tmp_path / "slices.db")
    yield running
    running.stop()


SMALL = {**WEB, "vip_cidr": "10.50.0.0/29", "max_members": 2}


# --- create, get, list ---------------------------------------------------------------------

def test_create_shows_the_slice_with_its_vips_and_members_from_the_pool(client):
    created = client.create("web", **WEB, members=2)
    assert (created.name, created.client, created.vip_cidr, created.priority) == \
        ("web", "ACME", "10.20.0.0/24", pb.GOLD)
    assert (created.service_vip, created.virtual_mac) == ("10.20.0.1", "02:fe:0a:14:00:01")
    assert _members(created) == [("h1", "10.0.0.1", "10.20.0.2", 0.0), ("h2", "10.0.0.2", "10.20.0.3", 0.0)]
    assert created.active_members == 2
    assert not created.members[0].placed               # the controller has not seen h1 yet
    assert (created.min_members, created.sla_quantile) == (1, pytest.approx(0.9))   # unset: defaults
    assert not created.HasField("last_decision")
    assert client.get("web") == created
    assert client.list() == [created]
    assert _owners(client) == {"h1": "web", "h2": "web", **{f"h{n}": "" for n in range(3, 9)}}


def test_create_without_a_member_count_starts_with_min_members(client):
    created = client.create("web", **{**WEB, "priority": "silver"}, min_members=3, sla_quantile=0.99)
    assert [m.host_id for m in created.members] == ["h1", "h2", "h3"]
    assert (created.min_members, created.sla_quantile, created.priority) == \
        (3, pytest.approx(0.99), pb.SILVER)


def test_slices_are_listed_by_name(client):
    client.create("web", **WEB)
    client.create("db", **{**WEB, "vip_cidr": "10.30.0.0/24"})
    assert [(s.name, s.service_vip, s.index) for s in client.list()] == \
        [("db", "10.30.0.1", 1), ("web", "10.20.0.1", 0)]


# --- scale, drain, delete ------------------------------------------------------------------

def test_scale_up_adds_pool_members_with_fresh_vips(client):
    client.create("web", **WEB, members=2)
    scaled = client.scale("web", 4)
    assert _members(scaled) == [("h1", "10.0.0.1", "10.20.0.2", 0.0), ("h2", "10.0.0.2", "10.20.0.3", 0.0),
                                ("h3", "10.0.0.3", "10.20.0.4", 0.0), ("h4", "10.0.0.4", "10.20.0.5", 0.0)]
    assert client.get("web") == scaled
    assert [h for h, owner in _owners(client).items() if owner == "web"] == ["h1", "h2", "h3", "h4"]


def test_scale_down_drains_the_newest_members_and_scale_up_revives_them(client):
    client.create("web", **WEB, members=4)
    scaled = client.scale("web", 2)
    assert _members(scaled) == [("h1", "10.0.0.1", "10.20.0.2", 0.0), ("h2", "10.0.0.2", "10.20.0.3", 0.0),
                                ("h3", "10.0.0.3", "10.20.0.4", NOW + 30),
                                ("h4", "10.0.0.4", "10.20.0.5", NOW + 30)]
    assert scaled.active_members == 2
    assert client.get("web") == scaled
    assert _owners(client)["h4"] == "web"              # still serving its open connections
    revived = client.scale("web", 3)
    assert _members(revived)[2:] == [("h3", "10.0.0.3", "10.20.0.4", 0.0),
                                     ("h4", "10.0.0.4", "10.20.0.5", NOW + 30)]
    assert revived.active_members == 3


def test_without_a_drain_time_scale_down_releases_at_once_and_reclaimed_vips_wait(serve):
    client = serve(drain_s=0).client
    client.create("web", **{**WEB, "vip_cidr": "10.20.0.0/29", "max_members": 5}, members=2)
    client.scale("web", 4)
    client.scale("web", 2)
    assert _members(client.get("web")) == [("h1", "10.0.0.1", "10.20.0.2", 0.0),
                                           ("h2", "10.0.0.2", "10.20.0.3", 0.0)]
    assert (_owners(client)["h3"], _owners(client)["h4"]) == ("", "")
    # .4 and .5 were just reclaimed: the never-used .6 goes first, then the oldest reclaimed.
    assert [m.vip for m in client.scale("web", 3).members] == ["10.20.0.2", "10.20.0.3", "10.20.0.6"]
    assert [m.vip for m in client.scale("web", 4).members] == \
        ["10.20.0.2", "10.20.0.3", "10.20.0.4", "10.20.0.6"]


def test_scale_to_the_current_count_changes_nothing(client):
    created = client.create("web", **WEB, members=2)
    assert client.scale("web", 2) == created


def test_delete_returns_every_member_to_the_pool_and_frees_the_range(client):
    client.create("web", **WEB, members=3)
    client.scale("web", 2)                             # h3 is draining
    client.delete("web")
    assert client.list() == []
    assert set(_owners(client).values()) == {""}
    with pytest.raises(grpc.RpcError) as err:
        client.get("web")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    again = client.create("other", **WEB, members=3)
    assert [m.vip for m in again.members] == ["10.20.0.2", "10.20.0.3", "10.20.0.4"]


def test_a_scaling_decision_shows_on_the_slice_and_its_event(ctl):
    client = ctl.client
    client.create("web", **WEB, members=2)
    stream = client.watch("web")
    try:
        assert [next_message(stream).kind for _ in range(2)] == [pb.SNAPSHOT, pb.WATCHING]
        decision = ScalingDecision("web", 2, 4, "scale_up", "forecast", 35.0, 300.0, "ceil(35/10)=4",
                                   decided_at_s=1e9, measured_mbps=12.5, forecast_mbps=35.0,
                                   forecast_horizon_s=300.0)
        ctl.manager.scale("web", 4, why="scale up by forecast", decision=decision)
        event = next_message(stream)
    finally:
        stream.cancel()
    expected = pb.ScalingDecision(action=pb.SCALE_UP, basis=pb.FORECAST, current_members=2, target_members=4,
                                  demand_mbps=35.0, lead_time_s=300.0, reason="ceil(35/10)=4",
                                  decided_at_s=1e9, measured_mbps=12.5, forecast_mbps=35.0,
                                  forecast_horizon_s=300.0)
    assert (event.kind, event.decision) == (pb.SCALED, expected)
    assert "scale up by forecast" in event.detail
    assert client.get("web").last_decision == expected


# --- watch ---------------------------------------------------------------------------------

def test_watch_streams_created_scaled_deleted_in_order(ctl):
    client = ctl.client
    stream = client.watch("web")
    try:
        assert next_message(stream).kind == pb.WATCHING
        client.create("db", **{**WEB, "vip_cidr": "10.30.0.0/24"})     # another slice: not watched
        client.create("web", **WEB, members=2)
        client.scale("web", 4)
        client.delete("web")
        seen = [next_message(stream) for _ in range(3)]
    finally:
        stream.cancel()
    assert [(e.kind, e.slice_name) for e in seen] == [(pb.CREATED, "web"), (pb.SCALED, "web"),
                                                      (pb.DELETED, "web")]
    assert [len(e.slice.members) for e in seen[:2]] == [2, 4]
    assert all(e.time == NOW for e in seen)
    assert "2 -> 4" in seen[1].detail
    assert not seen[2].HasField("slice")
    assert seen[2].detail == "released h2, h3, h4, h5"        # h1 serves db
    wait_for(lambda: ctl.manager.bus.subscribers == 0)


def test_watch_opens_with_a_snapshot_and_sees_pool_events(ctl):
    client = ctl.client
    created = client.create("web", **WEB, members=2)
    stream = client.watch()
    try:
        first, started = next_message(stream), next_message(stream)
        client.register_member("edge", "h9", "10.0.0.9")
        second = next_message(stream)
    finally:
        stream.cancel()
    assert (first.kind, first.slice_name, first.slice) == (pb.SNAPSHOT, "web", created)
    assert (started.kind, started.slice_name, started.detail) == (pb.WATCHING, "", "snapshot complete")
    assert (second.kind, second.slice_name, second.HasField("slice")) == (pb.MEMBER_REGISTERED, "", False)
    assert "h9" in second.detail


def test_watch_ends_when_the_controller_stops(ctl):
    _, stream = ctl.client.watch_started(timeout_s=5.0)
    ctl.manager.bus.close()
    assert list(stream) == []


def test_watcher_that_falls_behind_is_told_so(ctl, monkeypatch):
    small_watch_queues(monkeypatch)
    stream = ctl.client.watch(timeout_s=10.0)
    wait_for(lambda: ctl.manager.bus.subscribers == 1)
    burst = [SliceEvent("DECISION", NOW + i, "web", f"decision {i}") for i in range(5000)]
    ctl.manager.bus.publish(burst)
    assert ctl.manager.bus.subscribers == 0
    received = 0
    with pytest.raises(grpc.RpcError) as err:
        for event in stream:
            received += event.kind == pb.DECISION
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "watch again" in err.value.details()
    assert 0 < received < len(burst)


def test_watch_of_an_invalid_name_is_invalid_argument(client):
    with pytest.raises(grpc.RpcError) as err:
        next(client.watch("Not A Slug", timeout_s=5.0))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith("name:")


def test_event_kinds_mirror_the_manager():
    assert set(pb.SliceEventKind.keys()) == {"SLICE_EVENT_KIND_UNSPECIFIED", "SNAPSHOT", "WATCHING",
                                            *EVENT_KINDS}


# --- the pool ------------------------------------------------------------------------------

def test_register_member_returns_it_and_list_members_filters_by_pool(client):
    member = client.register_member("core", "h9", "10.0.1.9", {"rack": "r9"})
    assert (member.host_id, member.pool, member.ipv4, dict(member.labels), member.slice_name) == \
        ("h9", "core", "10.0.1.9", {"rack": "r9"}, "")
    assert client.register_member("core", "h9", "10.0.1.9", {"rack": "r9"}) == member
    assert client.list_members("core") == [member]
    assert [m.host_id for m in client.list_members("edge")] == [h for h, _ in HOSTS]
    assert client.list_members("nowhere") == []
    client.unregister_member("h9")
    assert client.list_members("core") == []


def test_a_member_serving_a_slice_says_so(client):
    client.create("web", **WEB, members=1)
    assert client.register_member("edge", "h1", "10.0.0.1", {"rack": "r0"}).slice_name == "web"


# --- refused requests ----------------------------------------------------------------------

def _create(name="db", **changes):
    spec = {**WEB, "vip_cidr": "10.30.0.0/24", **changes}
    return lambda c: c.create(name, **spec)


OK = grpc.StatusCode
REFUSED = {
    "overlapping vip range": (_create(vip_cidr="10.20.0.128/25"), OK.FAILED_PRECONDITION,
                              "vip range 10.20.0.128/25 of slice 'db': overlaps vip range 10.20.0.0/24 "
                              "of slice 'web'"),
    "zero bandwidth": (_create(bandwidth_mbps=0), OK.INVALID_ARGUMENT, "bandwidth_mbps: must be > 0, got 0"),
    "negative bandwidth": (_create(bandwidth_mbps=-5), OK.INVALID_ARGUMENT, "bandwidth_mbps: must be > 0"),
    "get unknown": (lambda c: c.get("nope"), OK.NOT_FOUND, "slice 'nope': no such slice"),
    "scale unknown": (lambda c: c.scale("nope", 2), OK.NOT_FOUND, "slice 'nope': no such slice"),
    "delete unknown": (lambda c: c.delete("nope"), OK.NOT_FOUND, "slice 'nope': no such slice"),
    "create beyond the pool": (_create(members=7), OK.RESOURCE_EXHAUSTED,
                               "pool 'edge': wanted 7 member(s) for slice 'db', 6 available"),
    "scale beyond the pool": (lambda c: c.scale("web", 9), OK.RESOURCE_EXHAUSTED,
                              "pool 'edge': wanted 7 member(s) for slice 'web', 6 available"),
    "unknown pool": (_create(pool="nowhere"), OK.INVALID_ARGUMENT,
                     "pool: no member is registered in pool 'nowhere' (pools: edge)"),
    "duplicate name": (_create(name="web"), OK.ALREADY_EXISTS, "slice 'web': already exists"),
    "create above max_members": (_create(max_members=4, members=5), OK.INVALID_ARGUMENT,
                                 "members: must be within min_members..max_members (1..4), got 5"),
    "create below min_members": (_create(min_members=3, members=2), OK.INVALID_ARGUMENT, "members:"),
    "scale to zero": (lambda c: c.scale("web", 0), OK.INVALID_ARGUMENT,
                      "members: must be within min_members..max_members (1..10), got 0"),
    "scale above max_members": (lambda c: c.scale("web", 11), OK.INVALID_ARGUMENT, "members:"),
    "max below min": (_create(min_members=3, max_members=2), OK.INVALID_ARGUMENT, "max_members:"),
    "no max_members": (_create(max_members=0), OK.INVALID_ARGUMENT, "max_members: must be >= 1"),
    "cidr with host bits": (_create(vip_cidr="10.30.0.1/24"), OK.INVALID_ARGUMENT, "vip_cidr: not an IPv4"),
    "cidr not a network": (_create(vip_cidr="ten-thirty"), OK.INVALID_ARGUMENT, "vip_cidr: not an IPv4"),
    "cidr too wide": (_create(vip_cidr="10.0.0.0/8"), OK.INVALID_ARGUMENT, "vip_cidr: prefix length"),
    "cidr empty": (_create(vip_cidr=""), OK.INVALID_ARGUMENT, "vip_cidr:"),
    "max_members beyond the range": (_create(vip_cidr="10.30.0.0/30"), OK.INVALID_ARGUMENT,
                                     "max_members: 10.30.0.0/30 has room for 1 member"),
    "priority unspecified": (_create(priority=pb.PRIORITY_UNSPECIFIED), OK.INVALID_ARGUMENT,
                             "priority: required, one of GOLD, SILVER, BRONZE"),
    "priority unknown": (_create(priority=42), OK.INVALID_ARGUMENT, "priority: must be one of"),
    "sla_quantile zero": (_create(sla_quantile=0.0), OK.INVALID_ARGUMENT, "sla_quantile: must be > 0"),
    "empty name": (_create(name=""), OK.INVALID_ARGUMENT, "name: must be 1..63 characters"),
    "name not a slug": (_create(name="Web Shop"), OK.INVALID_ARGUMENT, "name: must be lowercase"),
    "empty client": (_create(client=""), OK.INVALID_ARGUMENT, "client: must not be empty"),
    "empty pool": (_create(pool=""), OK.INVALID_ARGUMENT, "pool: must not be empty"),
    "get empty name": (lambda c: c.get(""), OK.INVALID_ARGUMENT, "name:"),
    "scale empty name": (lambda c: c.scale("", 2), OK.INVALID_ARGUMENT, "name:"),
    "delete empty name": (lambda c: c.delete(""), OK.INVALID_ARGUMENT, "name:"),
    "member bad ipv4": (lambda c: c.register_member("edge", "h9", "10.0.0.300"), OK.INVALID_ARGUMENT,
                        "ipv4: not an IPv4 address"),
    "member empty host_id": (lambda c: c.register_member("edge", "", "10.0.0.9"), OK.INVALID_ARGUMENT,
                             "host_id: must not be empty"),
    "member empty pool": (lambda c: c.register_member("", "h9", "10.0.0.9"), OK.INVALID_ARGUMENT,
                          "pool: must not be empty"),
    "member in another pool": (lambda c: c.register_member("core", "h3", "10.0.0.3"), OK.FAILED_PRECONDITION,
                               "member 'h3': already in pool 'edge'"),
    "unregister a serving member": (lambda c: c.unregister_member("h1"), OK.FAILED_PRECONDITION,
                                    "member 'h1': serves slice 'web'"),
    "unregister unknown": (lambda c: c.unregister_member("h99"), OK.NOT_FOUND,
                           "member 'h99': no such pool member"),
    "unregister empty host_id": (lambda c: c.unregister_member(""), OK.INVALID_ARGUMENT, "host_id:"),
    "negative enforce timeout": (_create(enforce_timeout_s=-1.0), OK.INVALID_ARGUMENT,
                                 "enforce_timeout_s: must be a finite number of seconds >= 0 "
                                 "(0: do not wait), got -1.0"),
    "nan enforce timeout": (_create(enforce_timeout_s=math.nan), OK.INVALID_ARGUMENT, "enforce_timeout_s:"),
    "infinite enforce timeout": (_create(enforce_timeout_s=math.inf), OK.INVALID_ARGUMENT,
                                 "enforce_timeout_s:"),
    "scale with negative enforce timeout": (lambda c: c.scale("web", 3, enforce_timeout_s=-0.5),
                                            OK.INVALID_ARGUMENT, "enforce_timeout_s:"),
}


@pytest.mark.parametrize("call, code, message", REFUSED.values(), ids=REFUSED.keys())
def test_refused_request_names_what_is_wrong_and_changes_nothing(client, call, code, message):
    client.create("web", **WEB, members=2)
    slices, members = client.list(), client.list_members()
    with pytest.raises(grpc.RpcError) as err:
        call(client)
    assert err.value.code() == code
    assert err.value.details().startswith(message)
    assert client.list() == slices
    assert client.list_members() == members


def test_a_state_file_that_cannot_be_written_is_unavailable_and_changes_nothing(ctl):
    client = ctl.client
    client.create("web", **WEB, members=2)
    slices, members = client.list(), client.list_members()
    ctl.manager.store.db.close()
    with pytest.raises(grpc.RpcError) as err:
        client.scale("web", 4)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details().startswith(f"slices state file {ctl.manager.store.path}")
    assert client.list() == slices
    assert client.list_members() == members


# --- enforce_timeout_s: answer once the switches confirm ------------------------------------

def test_without_enforce_timeout_the_answer_does_not_wait(network):
    created = network.client.create("web", **SMALL, members=1)      # nobody answers barriers
    assert created.enforced_s == 0.0
    assert network.core.unconfirmed(network.core.sync_mark()) == [1, 2, 3]


def test_create_answers_once_every_switch_confirmed_the_slice(network):
    network.answer_after(0.3)
    started = time.monotonic()
    created = network.client.create("web", **SMALL, members=2, enforce_timeout_s=10.0)
    took = time.monotonic() - started
    assert 0.25 <= created.enforced_s <= took           # the answers began 0.3 s after the call
    assert [m.placed for m in created.members] == [True, True]
    assert network.net.out_of_sync() == {}                 # meters, groups, flows: all there
    for dp_id in (1, 2, 3):
        assert network.net.switches[dp_id].groups and network.net.switches[dp_id].meters


def test_scale_answers_once_every_switch_confirmed_it(network):
    network.client.create("web", **SMALL, members=1)
    network.answer()
    network.answer_after(0.2)
    scaled = network.client.scale("web", 2, enforce_timeout_s=10.0)
    assert scaled.enforced_s >= 0.15
    assert scaled.active_members == 2


def test_enforce_timeout_is_deadline_exceeded_naming_the_switches_and_the_slice_stays(network):
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        network.client.create("web", **SMALL, members=1, enforce_timeout_s=0.5)
    assert 0.5 <= time.monotonic() - started < 4.0
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert err.value.details() == (
        "enforce_timeout_s: s1 (dp 0000000000000001), s2 (dp 0000000000000002), s3 (dp 0000000000000003) "
        "did not confirm within 0.5 s; slice 'web' is created and stays so")
    assert [s.name for s in network.client.list()] == ["web"]


def test_switch_that_disconnects_before_confirming_is_unavailable_at_once(network):
    network.answer()

    def lose_s3():
        with network.core.lock:
            network.net.disconnect(3)
    timer = threading.Timer(0.3, lose_s3)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as err:
            network.client.create("web", **SMALL, members=1, enforce_timeout_s=30.0)
    finally:
        timer.join()
    assert time.monotonic() - started < 5.0
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert err.value.details().startswith("s3 (dp 0000000000000003) disconnected before confirming; "
                                          "slice 'web' is created and stays so")


def test_a_switch_that_refuses_the_slice_is_failed_precondition_naming_it_and_the_error(network):
    network.net.REFUSE_WITH_ERRORS = True       # it answers with the OpenFlow error, as OVS does
    network.net.switches[1].max_meters = 0      # s1 has no room for the slice's meter
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as err:
        network.client.create("web", **SMALL, members=1, enforce_timeout_s=30.0)
    assert time.monotonic() - started < 5.0        # at once: no barrier was answered
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = err.value.details()
    assert details.startswith("s1 (dp 0000000000000001) refused meter ")
    assert ": OFPET_METER_MOD_FAILED/OFPMMFC_OUT_OF_METERS" in details
    assert details.endswith("; slice 'web' is created and stays so in the controller's intent (the switch "
                            "is reconciled without what it refused, until that intent changes)")
    assert [s.name for s in network.client.list()] == ["web"]
    assert network.core.counters["openflow_refusals"] >= 1


def test_enforce_with_no_switch_to_wait_for_is_immediate(client):
    created = client.create("web", **WEB, members=2, enforce_timeout_s=5.0)
    assert 0 < created.enforced_s < 1.0
    assert 0 < client.scale("web", 3, enforce_timeout_s=5.0).enforced_s < 1.0


# --- restart -------------------------------------------------------------------------------

def test_slices_members_and_vips_survive_a_restart(serve):
    first = serve()
    first.client.create("web", **WEB, members=3)
    first.client.create("db", **{**WEB, "vip_cidr": "10.30.0.0/24", "priority": "bronze"}, members=2)
    first.client.scale("web", 2)                       # h3 drains until NOW + 30
    first.client.register_member("core", "h9", "10.0.1.9", {"rack": "r9"})
    slices, members = first.client.list(), first.client.list_members()
    first.stop()

    again = serve(register=False).client               # the pool comes from the state file only
    assert again.list() == slices
    assert again.list_members() == members
    assert _members(again.get("web"))[2] == ("h3", "10.0.0.3", "10.20.0.4", NOW + 30)
    # The VIP allocator resumes where it was: the next member gets the next never-used address.
    assert _members(again.scale("web", 4))[3] == ("h6", "10.0.0.6", "10.20.0.5", 0.0)


# --- serving -------------------------------------------------------------------------------

def test_health_and_reflection_list_the_slices_service(client):
    assert SERVICE_NAME == "foresight.v1.Slices"
    reply = client.health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5.0)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(client.channel)
    replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                        timeout=5.0)
    services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"foresight.v1.Controller", SERVICE_NAME} <= services


def test_a_watcher_of_one_slice_is_not_swamped_by_the_others(ctl, monkeypatch):
    small_watch_queues(monkeypatch)
    stream = ctl.client.watch("web", timeout_s=10.0)
    try:
        wait_for(lambda: ctl.manager.bus.subscribers == 1)
        ctl.manager.bus.publish([SliceEvent("DECISION", NOW + i, "db", f"decision {i}") for i in range(5000)])
        ctl.manager.bus.publish([SliceEvent("DECISION", NOW, "web", "mine")])
        assert ctl.manager.bus.subscribers == 1, "another slice's events overflowed this watcher"
        assert next_message(stream).kind == pb.WATCHING
        event = next_message(stream)
    finally:
        stream.cancel()
    assert (event.slice_name, event.detail) == ("web", "mine")
