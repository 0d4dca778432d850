"""labs.staging and labs.staging_copy without Mininet: the copy's config, which state
files it starts from, the rate a rate check offers and how it is judged, the options,
the rehearsal's steps against a fake copy, and the keeper's signal hold."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

import apps.provisioning  # noqa: F401 - registers its config section
from apps.provisioning.changes import Change
from apps.provisioning.templates import Promise, Rendered
from controller import config as config_mod
from labs import staging
from labs.staging import (
    MininetRehearsal,
    StagingError,
    copied_stores,
    copy_config,
    directions,
    judge_rate,
    offered_rate,
    pick_client,
)
from labs.staging_copy import Signals, copy_sqlite
from proto import provisioning_pb2 as pb

MAC1, MAC3 = "00:00:00:00:00:01", "00:00:00:00:00:03"


def production(tmp_path: Path) -> dict:
    data = {
        "controller": {
            "providers": ["apps.slices.app:provider", "apps.provisioning.app:provider"],
            "grpc": {"port": 50051, "unix_socket": str(tmp_path / "ctl.sock")},
            "state": {"path": "/var/lib/foresight/controller.sqlite"},
            "predictor": {"address": "127.0.0.1:50060"},
            "clock": {"time_scale": 150.0, "virtual_origin_s": 1e9, "real_origin_s": 1.7e9},
        },
        "slices": {"store_path": "/prod/slices.sqlite", "scaling": {"enabled": True, "interval_s": 2.0}},
        "provisioning": {
            "store_path": "/prod/provisioning.sqlite",
            "rehearsal": "labs.staging:rehearsal",
            "rehearsal_options": {"topology": "abilene"},
        },
        "stitching": {"store_path": "/prod/stitching.sqlite"},
        "te": {"decisions_path": "/prod/te.jsonl"},
    }
    return config_mod.model().model_validate(data).model_dump(mode="json")


# ---- the copy's config and state ---------------------------------------------------------------


def test_the_copy_runs_productions_config_with_its_own_state_and_nothing_that_acts_alone(tmp_path):
    prod = production(tmp_path)
    before = json.dumps(prod, sort_keys=True)
    cfg = copy_config(prod, tmp_path / "state")
    assert json.dumps(prod, sort_keys=True) == before  # production's dict is not touched
    ctl = cfg["controller"]
    assert ctl["state"]["path"] == str(tmp_path / "state" / "controller.sqlite")
    assert ctl["grpc"]["unix_socket"] == "" and ctl["grpc"]["listen_host"] == "127.0.0.1"
    assert ctl["openflow"]["listen_host"] == "127.0.0.1"
    assert ctl["predictor"]["address"] == ""
    assert ctl["providers"] == prod["controller"]["providers"]
    assert ctl["clock"] == prod["controller"]["clock"]  # the same app clock
    assert cfg["topology"] == prod["topology"]
    for section in ("slices", "provisioning", "stitching"):
        assert cfg[section]["store_path"] == str(tmp_path / "state" / f"{section}.sqlite")
    assert cfg["te"]["decisions_path"] == ""
    assert cfg["slices"]["scaling"]["enabled"] is False
    assert cfg["slices"]["scaling"]["interval_s"] == 2.0
    prov = cfg["provisioning"]
    assert (prov["rehearsal"], prov["rehearsal_options"], prov["auto"]) == ("", {}, False)
    # It is a config the controller accepts.
    loaded = config_mod.model().model_validate(cfg)
    assert loaded.section("provisioning").rehearsal == ""


def test_the_copy_starts_from_productions_slices_and_provisioning_state(tmp_path):
    prod = production(tmp_path)
    assert copied_stores(prod, tmp_path) == {
        str(tmp_path / "slices.sqlite"): "/prod/slices.sqlite",
        str(tmp_path / "provisioning.sqlite"): "/prod/provisioning.sqlite",
    }
    prod["provisioning"]["store_path"] = ""  # kept in memory: nothing to copy
    assert list(copied_stores(prod, tmp_path).values()) == ["/prod/slices.sqlite"]


def test_a_state_file_in_use_is_copied_as_committed(tmp_path):
    source = tmp_path / "prod.sqlite"
    db = sqlite3.connect(source, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE slices (name TEXT)")
    db.execute("INSERT INTO slices VALUES ('web')")
    db.execute("BEGIN")
    db.execute("INSERT INTO slices VALUES ('uncommitted')")
    assert copy_sqlite(str(source), tmp_path / "copy.sqlite")
    db.execute("ROLLBACK")
    db.close()
    copied = sqlite3.connect(tmp_path / "copy.sqlite")
    assert copied.execute("SELECT name FROM slices").fetchall() == [("web",)]
    copied.close()
    assert not copy_sqlite(str(tmp_path / "none.sqlite"), tmp_path / "other.sqlite")


# ---- the rate check --------------------------------------------------------------------------


def test_the_rate_offered_is_the_promise_or_the_smaller_need():
    assert offered_rate(6.0, 0.0) == (6.0, "the promised rate")
    assert offered_rate(6.0, 7.5) == (6.0, "the promised rate")
    assert offered_rate(6.0, 4.2) == (4.2, "the forecast need (promised 6)")


def test_a_rate_passes_on_delivered_share_and_loss():
    mbit_2s = 1e6 / 8 * 2  # bytes in 2 s at 1 Mbit/s
    ok, detail = judge_rate(6.0, "the promised rate", 2.0, int(6 * mbit_2s), int(5.9 * mbit_2s))
    assert ok
    assert detail == (
        "offered 6 Mbit/s (the promised rate) for 2 s: sent 6.00, delivered 5.90 Mbit/s "
        "(98.3% of offered), loss 1.7%"
    )
    ok, detail = judge_rate(20.0, "the promised rate", 2.0, int(20 * mbit_2s), int(9.5 * mbit_2s))
    assert not ok and detail.endswith("delivered below 95% of offered and loss above 2%")
    # The sender fell short (a busy machine): nothing lost, but not the rate promised.
    ok, detail = judge_rate(6.0, "x", 2.0, int(5 * mbit_2s), int(5 * mbit_2s))
    assert not ok and detail.endswith(": delivered below 95% of offered")
    ok, detail = judge_rate(6.0, "x", 2.0, int(6 * mbit_2s), int(5.8 * mbit_2s))
    assert not ok and detail.endswith(": loss above 2%")
    ok, detail = judge_rate(6.0, "x", 2.0, 0, 0)
    assert not ok and "loss 100.0%" in detail


def test_pairs_are_probed_both_ways_once():
    assert directions([(MAC1.upper(), MAC3), (MAC3, MAC1)]) == [(MAC1, MAC3), (MAC3, MAC1)]
    assert directions([]) == []


def test_the_client_is_configured_or_the_first_host_not_a_member():
    hosts = [dict(name=f"sth{n}", mac=f"00:00:00:00:00:0{n}", ip=f"10.0.0.{n}") for n in (1, 2, 3)]
    assert pick_client(hosts, {"10.0.0.1"}) == "10.0.0.2"
    assert pick_client(hosts, {"10.0.0.1"}, configured="10.0.0.3") == "10.0.0.3"
    assert pick_client(hosts, {h["ip"] for h in hosts}) == ""


# ---- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options, where",
    [
        ({}, "topology"),
        ({"topology": "line3", "prefix": "ST"}, "prefix"),
        ({"topology": "line3", "prefix": "toolong1"}, "prefix"),
        ({"topology": "line3", "clients": {"web": "h1"}}, "clients"),
        ({"topology": "line3", "probe_s": 0}, "probe_s"),
        ({"topology": "line3", "colour": "red"}, "colour"),
    ],
)
def test_bad_options_are_named(options, where):
    with pytest.raises(StagingError, match=rf"provisioning\.rehearsal_options\.{where}"):
        staging.rehearsal(None, options)


def test_options_default_to_a_lab_like_copy():
    r = staging.rehearsal(None, {"topology": "line3", "clients": {"web": "10.0.0.1"}})
    try:
        o = r.options
        assert (o.prefix, o.hosts_per_switch, o.bw_scale, o.probe_s) == ("st", 1, 0.001, 2.0)
        assert o.clients == {"web": "10.0.0.1"}
    finally:
        r.close()


# ---- the rehearsal's steps against a fake copy -------------------------------------------------


class FakeProvisioning:
    """The copy's provisioning API: stages pass unless ``refuse``; every call recorded."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.stage_state = pb.STAGED
        self.deploy_state = pb.DEPLOYED
        self.refuse = False
        self.seq = 10

    def stage(self, template, params, timeout_s=None):
        self.calls.append(("stage", template, params))
        if self.refuse:
            raise FakeRpcError(*(() if self.refuse is True else (self.refuse,)))
        self.seq += 1
        return pb.Change(id=f"c{self.seq:05d}", state=self.stage_state, detail="verify: a loop at s2")

    def deploy(self, change_id, timeout_s=None):
        self.calls.append(("deploy", change_id))
        return pb.Change(id=change_id, state=self.deploy_state, detail="post-deploy check post:knobs failed")

    def rollback(self, change_id, reason=""):
        self.calls.append(("rollback", change_id))
        msg = pb.Change(id=change_id, state=pb.ROLLED_BACK)
        msg.rollback.restored = True
        return msg

    def close(self):
        pass


class FakeRpcError(grpc.RpcError):
    def __init__(self, code=grpc.StatusCode.INVALID_ARGUMENT):
        self._code = code

    def code(self):
        return self._code

    def details(self):
        return "params.slice: no slice named 'web'"


class FakeKeeper:
    def __init__(self, reach_ok=True, received_share=1.0):
        self.proc = type("P", (), {"poll": staticmethod(lambda: None), "pid": 1})()
        self.reach_ok = reach_ok
        self.received_share = received_share
        self.calls: list[tuple] = []
        self.broken = False

    def call(self, op, timeout_s, **args):
        self.calls.append((op, args))
        if op == "reach":
            return {"results": [dict(src=a, dst=b, ok=self.reach_ok, detail="x") for a, b in args["pairs"]]}
        sent = int(args["mbps"] * 1e6 / 8 * args["seconds"])
        return {"sent": sent, "received": int(sent * self.received_share)}

    def stop(self, wait_s):
        self.calls.append(("stop", wait_s))


class FakeCopy(staging._Copy):
    def __init__(self, keeper, inherited=()):
        self.keeper = keeper
        self.hosts = [dict(name=f"sth{n}", mac=f"00:00:00:00:00:0{n}", ip=f"10.0.0.{n}") for n in (1, 2, 3)]
        self.by_mac = {h["mac"]: h for h in self.hosts}
        self.provisioning = FakeProvisioning()
        self.slices = None
        self.inherited = set(inherited)

    def close(self):
        pass


def rehearsal_on(copy: FakeCopy) -> MininetRehearsal:
    r = staging.rehearsal(None, {"topology": "line3"})
    r._copy = copy
    return r


def od_path(need_mbps: float = 0.0) -> tuple[Change, Rendered]:
    params = {"src": "10.0.0.1", "dst": "10.0.0.3", "path": ["s1", "s2", "s3"], "mbps": 3.0}
    promise = Promise(f"pair:{MAC1}-{MAC3}", 3.0, ((MAC1, MAC3), (MAC3, MAC1)))
    change = Change("c00007", "od_path@1", params, "pin", 0.0, promise=promise.as_json(), need_mbps=need_mbps)
    return change, Rendered("od_path@1", params, promise=promise)


def test_a_rehearsal_applies_probes_and_always_takes_the_change_back():
    copy = FakeCopy(FakeKeeper())
    r = rehearsal_on(copy)
    change, rendered = od_path(need_mbps=2.0)
    checks = r.rehearse(change, rendered)
    assert [(c.name, c.ok) for c in checks] == [
        ("rehearsal:apply", True),
        ("rehearsal:reach", True),
        ("rehearsal:rate", True),
    ]
    assert checks[0].detail.startswith("staged and deployed in the copy as c00011")
    assert checks[1].detail == "2 direction(s) reach"
    assert checks[2].detail.startswith(
        "10.0.0.1 -> 10.0.0.3: offered 2 Mbit/s (the forecast need (promised 3))"
    )
    assert copy.provisioning.calls == [
        ("stage", "od_path@1", change.params),
        ("deploy", "c00011"),
        ("rollback", "c00011"),
    ]
    assert copy.keeper.calls[1] == (
        "rate",
        dict(src="10.0.0.1", dst="10.0.0.3", receivers=["10.0.0.3"], mbps=2.0, seconds=2.0),
    )


def test_what_fails_in_the_copy_is_named_and_the_rest_is_not_run():
    copy = FakeCopy(FakeKeeper())
    copy.provisioning.stage_state = pb.STAGE_FAILED
    r = rehearsal_on(copy)
    checks = r.rehearse(*od_path())
    assert [(c.name, c.ok) for c in checks] == [("rehearsal:apply", False)]
    assert checks[0].detail == "the copy's staging of c00011 failed: verify: a loop at s2"
    assert [c[0] for c in copy.provisioning.calls] == ["stage"]  # nothing to take back

    copy.provisioning.stage_state, copy.provisioning.deploy_state = pb.STAGED, pb.ROLLED_BACK
    checks = r.rehearse(*od_path())
    assert checks[0].detail == "the copy's deploy of c00012 failed: post-deploy check post:knobs failed"

    copy.provisioning.refuse = True
    checks = r.rehearse(*od_path())
    assert checks[0].detail == "the copy refused it: INVALID_ARGUMENT: params.slice: no slice named 'web'"
    assert not copy.keeper.broken  # the change's fault, not the copy's


def test_a_copy_that_fails_is_replaced_and_the_change_rehearsed_again_there():
    copy, fresh = FakeCopy(FakeKeeper()), FakeCopy(FakeKeeper())
    copy.provisioning.refuse = grpc.StatusCode.UNAVAILABLE  # the copy's controller is gone
    r = rehearsal_on(copy)

    def ensure():
        if r._copy.keeper.broken:
            r._copy = fresh
            return fresh, 12.5
        return r._copy, 0.0

    r._ensure = ensure
    checks = r.rehearse(*od_path())
    assert copy.keeper.broken and [c[0] for c in copy.provisioning.calls] == ["stage"]
    assert [(c.name, c.ok) for c in checks] == [
        ("rehearsal:apply", True),
        ("rehearsal:reach", True),
        ("rehearsal:rate", True),
    ]
    assert checks[0].detail.startswith("copy brought up in 12.5 s; staged and deployed in the copy as c00011")


def test_an_unreachable_pair_fails_reach_and_a_short_rate_fails_rate_but_both_roll_back():
    copy = FakeCopy(FakeKeeper(reach_ok=False))
    r = rehearsal_on(copy)
    checks = r.rehearse(*od_path())
    assert [(c.name, c.ok) for c in checks] == [("rehearsal:apply", True), ("rehearsal:reach", False)]
    assert copy.provisioning.calls[-1] == ("rollback", "c00011")

    copy = FakeCopy(FakeKeeper(received_share=0.5))
    r = rehearsal_on(copy)
    checks = r.rehearse(*od_path())
    assert (checks[-1].name, checks[-1].ok) == ("rehearsal:rate", False)
    assert "delivered 1.50 Mbit/s (50.0% of offered)" in checks[-1].detail
    assert copy.provisioning.calls[-1] == ("rollback", "c00011")


def test_a_change_without_pairs_or_rate_passes_reach_and_rate_saying_so():
    copy = FakeCopy(FakeKeeper())
    r = rehearsal_on(copy)
    params = {"meter": "gold", "rate_mbps": 5.0}
    change = Change("c00001", "meter_rate@1", params, "meter", 0.0)
    checks = r.rehearse(change, Rendered("meter_rate@1", params, promise=Promise("meter:gold", 5.0)))
    assert [c.detail for c in checks[1:]] == ["no host pairs promised", "no rate probe for meter:gold"]
    assert copy.keeper.calls == []


def test_the_copy_follows_productions_deploys_and_rollbacks_by_id():
    copy = FakeCopy(FakeKeeper(), inherited={"c00002"})
    r = rehearsal_on(copy)
    change, _ = od_path()
    r.deployed(change)
    assert r.ids == {"c00007": "c00011"}
    r.rolled_back(change)
    assert copy.provisioning.calls[-1] == ("rollback", "c00011") and r.ids == {}
    # Deployed before the copy was made: the copy holds production's own record.
    r.rolled_back(Change("c00002", "od_path@1", {}, "", 0.0))
    assert copy.provisioning.calls[-1] == ("rollback", "c00002")
    with pytest.raises(StagingError, match="no change for c00009"):
        r.rolled_back(Change("c00009", "od_path@1", {}, "", 0.0))
    copy.provisioning.stage_state = pb.STAGE_FAILED
    with pytest.raises(StagingError, match="did not follow the deploy of c00007"):
        r.deployed(change)


def test_before_the_copy_exists_mirroring_does_nothing_and_close_tells_the_keeper():
    r = staging.rehearsal(None, {"topology": "line3"})
    change, _ = od_path()
    r.deployed(change)
    r.rolled_back(change)
    assert r.ids == {}
    keeper = FakeKeeper()
    r._copy = FakeCopy(keeper)
    r.close()
    assert keeper.calls == [("stop", 0.0)]
    with pytest.raises(StagingError, match="closed"):
        r.rehearse(*od_path())


def test_a_keeper_that_does_not_answer_is_broken_and_told_to_go(tmp_path):
    keeper = staging.Keeper({}, tmp_path)
    keeper.proc = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(30)"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    threading.Thread(target=keeper._read, daemon=True).start()
    try:
        with pytest.raises(StagingError, match="reach: no answer from the keeper in 0.2 s"):
            keeper.call("reach", timeout_s=0.2, pairs=[])
        assert keeper.broken
        assert keeper.proc.wait(5) == -signal.SIGTERM
        with pytest.raises(StagingError, match="the keeper is not running"):
            keeper.call("reach", timeout_s=0.2, pairs=[])
    finally:
        keeper.kill()


# ---- the keeper's signals ------------------------------------------------------------------


def test_a_stop_signal_ends_the_keeper_at_once_or_after_a_held_section():
    signals = Signals()
    with pytest.raises(SystemExit) as ended:
        signals._on(15, None)
    assert ended.value.code == 143
    with pytest.raises(SystemExit) as ended:
        with signals.held():
            signals._on(2, None)  # Mininet is building: noted, not acted on
            signals._on(15, None)
            built = True
    assert built and ended.value.code == 130
