"""The provisioning API and the ``foresight provision`` commands against a real gRPC server
whose provisioning app runs on the core and fake switches: what an operator reads, and
the status code and message when they ask for nonsense (nothing applied)."""

from __future__ import annotations

import json
import threading

import grpc
import pytest

from apps.provisioning.api import services
from apps.provisioning.client import ProvisioningClient
from controller.api import create_server
from labs import cli
from proto import provisioning_pb2 as pb
from tests.lib.provisioning_net import build, forecast, meter_rate_kbps, pair


@pytest.fixture
def served(tmp_path):
    net = build(tmp_path)
    server, port, servicer = create_server(net.core, "127.0.0.1:0", max_workers=4, services=services(net.app))
    server.start()
    client = ProvisioningClient(f"127.0.0.1:{port}")
    yield net, client, f"127.0.0.1:{port}"
    client.close()
    servicer.stopping = True
    net.app.stopping()
    server.stop(grace=None).wait(5)
    net.app.close()


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(call, code: grpc.StatusCode, *words: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == code, err.value.details()
    for word in words:
        assert word in err.value.details()


def test_a_recommendation_is_listed_staged_and_deployed_over_grpc(served):
    net, client, _ = served
    net.engine.evaluate(net.clock.now, {"slice:web": forecast({300: 14, 900: 15})}, "test")
    recs = client.recommendations()
    assert recs.trigger == "test" and [r.id for r in recs.recommendations] == ["slice:web/slice_bandwidth"]
    rec = recs.recommendations[0]
    assert rec.capacity_mbps == 10 and rec.need_mbps > 10 and 0 < rec.deadline_s <= 300
    assert "P(exceed)" in rec.reason and rec.confidence > 0.5
    staged = client.stage(recommendation_id=rec.id)
    assert staged.state == pb.STAGED and staged.resource == "slice:web"
    assert [c.name for c in staged.staging.checks] == ["verify", "covers-need"]
    assert [c.id for c in client.queue()] == [staged.id]
    deployed = client.deploy(staged.id)
    assert deployed.state == pb.DEPLOYED and deployed.deploy.before_crossing
    new = json.loads(deployed.params_json)["bandwidth_mbps"]
    assert meter_rate_kbps(net, 3, "web") == int(new * 1000)
    assert client.queue() == []
    back = client.rollback(staged.id, "test over")
    assert back.state == pb.ROLLED_BACK and back.rollback.restored and back.rollback.reason == "test over"
    assert meter_rate_kbps(net, 3, "web") == 10_000


def test_bad_requests_are_refused_naming_the_field_and_change_nothing(served):
    net, client, _ = served
    _refused(
        lambda: client.stage(template="slice_bandwidth", params={"slice": "web"}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.bandwidth_mbps",
        "missing",
    )
    _refused(
        lambda: client.stage(template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 0}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.bandwidth_mbps",
        "greater than 0",
    )
    _refused(
        lambda: client.stage(template="slice_bandwidth", params={"slice": "gone", "bandwidth_mbps": 5}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.slice",
        "'gone'",
    )
    _refused(
        lambda: client.stage(template="od_path", params=pair(net, path=["s1", "nowhere", "s4"])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params.path.1",
        "'nowhere'",
    )
    _refused(
        lambda: client.stage(template="teleport", params={}),
        grpc.StatusCode.INVALID_ARGUMENT,
        "template",
        "unknown template 'teleport'",
    )
    _refused(
        lambda: client.stub.Stage(pb.StageRequest(template="slice_bandwidth", params_json="{nope")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params_json",
        "not JSON",
    )
    _refused(
        lambda: client.stub.Stage(pb.StageRequest(template="slice_bandwidth", params_json="[1]")),
        grpc.StatusCode.INVALID_ARGUMENT,
        "params_json",
        "JSON object",
    )
    _refused(
        lambda: client.stage(change_id="c00001", template="od_path"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "exactly one of",
    )
    _refused(
        lambda: client.stage(
            template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 5}, need_mbps=-1
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "need_mbps",
    )
    _refused(
        lambda: client.stage(recommendation_id="slice:nope/slice_bandwidth"),
        grpc.StatusCode.NOT_FOUND,
        "not in the current queue",
    )
    _refused(lambda: client.deploy("c12345"), grpc.StatusCode.NOT_FOUND, "c12345")
    _refused(lambda: client.deploy(""), grpc.StatusCode.INVALID_ARGUMENT, "change_id", "required")
    _refused(lambda: client.rollback("c12345"), grpc.StatusCode.NOT_FOUND)
    assert client.changes() == [] and net.engine.changes == {}
    assert meter_rate_kbps(net, 1, "web") == 10_000


def test_deploying_a_failed_change_is_refused_and_the_record_says_which_check_failed(served):
    net, client, _ = served
    failed = client.stage(template="od_path_missing_group", params=pair(net, path=["s1", "s2", "s3", "s4"]))
    assert failed.state == pb.STAGE_FAILED
    verify = failed.staging.checks[0]
    assert verify.name == "verify" and not verify.ok and "missing-group" in verify.detail
    _refused(lambda: client.deploy(failed.id), grpc.StatusCode.FAILED_PRECONDITION, "failed staging")
    assert client.change(failed.id).state == pb.STAGE_FAILED


def test_templates_are_listed_with_their_schema_mode_and_accuracy(served):
    _, client, _ = served
    by_ref = {f"{t.name}@{t.version}": t for t in client.templates()}
    assert {"slice_bandwidth@1", "stitch_bandwidth@1", "meter_rate@1", "od_path@1"} <= set(by_ref)
    t = by_ref["slice_bandwidth@1"]
    schema = json.loads(t.params_schema_json)
    assert set(schema["required"]) == {"slice", "bandwidth_mbps"} and t.mode == "auto"
    assert t.accuracy == 1.0 and t.outcomes == 0 and t.latest


def test_watch_streams_a_snapshot_then_each_transition(served):
    net, client, _ = served
    queued = net.engine.create("slice_bandwidth", dict(slice="web", bandwidth_mbps=12))
    stream = client.watch(timeout_s=10)
    events = []

    def read():
        try:
            for e in stream:
                events.append(e)
                if e.kind == pb.TRANSITION and e.detail.startswith("STAGED"):
                    stream.cancel()
        except grpc.RpcError as err:             # the cancel ends the stream
            assert err.code() == grpc.StatusCode.CANCELLED

    reader = threading.Thread(target=read)
    reader.start()
    for _ in range(100):
        if any(e.kind == pb.WATCHING for e in events):
            break
        threading.Event().wait(0.02)
    client.stage(change_id=queued.id)
    reader.join(10)
    kinds = [pb.EventKind.Name(e.kind) for e in events]
    assert kinds[:2] == ["SNAPSHOT", "WATCHING"] and events[0].change.id == queued.id
    assert [e.detail.split(":")[0] for e in events[2:]] == ["STAGING", "STAGED"]
    assert events[-1].change.state == pb.STAGED


def test_the_cli_shows_the_queue_a_change_and_its_refusals(served, capsys):
    net, _, address = served
    code, out, _ = _run(
        capsys,
        "--controller",
        address,
        "provision",
        "stage",
        "--template",
        "slice_bandwidth",
        "--params",
        '{"slice": "web", "bandwidth_mbps": 12}',
    )
    assert code == 0 and "STAGED" in out and "ok   verify" in out and "ok   covers-need" in out
    change_id = out.split()[0]
    code, out, _ = _run(capsys, "--controller", address, "provision", "queue")
    assert out.startswith(change_id)
    code, out, _ = _run(capsys, "--controller", address, "provision", "deploy", change_id)
    assert code == 0 and "DEPLOYED" in out and "post:confirmed" in out
    code, out, _ = _run(capsys, "--controller", address, "provision", "show", change_id)
    assert "deploy on" in out
    code, out, err = _run(capsys, "--controller", address, "provision", "deploy", change_id)
    assert code != 0 and "only a STAGED change deploys" in (out + err)
    code, out, _ = _run(capsys, "--controller", address, "provision", "templates")
    assert "slice_bandwidth@1 (latest)" in out
