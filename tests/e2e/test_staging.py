"""Rehearsal on a Mininet copy (labs/staging.py) end to end: production runs the
slices and provisioning apps with ``provisioning.rehearsal: labs.staging:rehearsal``;
each staged change is applied in the copy (its own controller and prefixed Mininet,
started from production's state), probed with real traffic, and taken back.

line3 with 10 Mbit/s links (bw_scale 0.1), one host per switch: slice ``web``'s member
is h3 (10.0.0.3), its traffic comes from h1 (10.0.0.1), two shaped links away.

1. A slice bandwidth change the links can carry stages with every rehearsal check
   passing (the rate check measured traffic) and deploys; the copy follows.
2. A pinned path with a rate stages (both ways reach, its rate delivered), deploys
   and rolls back; the copy follows both.
3. A slice bandwidth of 20 Mbit/s verifies in memory (a meter's rate is not a
   forwarding fault) but the copy's 10 Mbit/s links deliver half of it: STAGE_FAILED on
   ``rehearsal:rate``, and production is as it was.
4. Once the lab stops, no bridge, interface, host shell or process of the copy is left.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from apps.provisioning.client import ProvisioningClient
from apps.slices.client import SlicesClient
from labs.lab import Lab
from proto import provisioning_pb2 as pb

PREFIX = "st"
REHEARSAL_CHECKS = ["rehearsal:apply", "rehearsal:reach", "rehearsal:rate"]


def production_config(state: Path) -> dict:
    return {
        "controller": {
            "providers": ["apps.slices.app:provider", "apps.provisioning.app:provider"],
            "telemetry": {"poll_interval_s": 1.0},
        },
        "slices": {
            "store_path": str(state / "slices.sqlite"),
            "scaling": {"enabled": False},
            "members": [{"pool": "servers", "host_id": "h3", "ipv4": "10.0.0.3"}],
        },
        "provisioning": {
            "store_path": str(state / "provisioning.sqlite"),
            "auto": False,
            "rehearsal": "labs.staging:rehearsal",
            "rehearsal_options": {
                "topology": "line3",
                "bw_scale": 0.1,
                "hosts_per_switch": 1,
                "prefix": PREFIX,
                "workdir": str(state / "copy"),
            },
        },
    }


def start_production(state: Path) -> Lab:
    """line3 with slice ``web`` (member h3, 4 Mbit/s); the caller stops it (``stop_production``)."""
    lab = Lab(
        "line3",
        bw_scale=0.1,
        hosts_per_switch=1,
        controller_config=production_config(state),
        workdir=state / "lab",
    )
    lab.copy_dir = state / "copy"
    lab.slices = lab.prov = None
    try:
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        for name in ("h1", "h3"):
            lab.net.get(name).cmd("ping -c1 -W2 10.0.0.2 >/dev/null")
        lab.slices = SlicesClient(lab.controller.grpc_address)
        lab.prov = ProvisioningClient(lab.controller.grpc_address)
        lab.slices.create(
            "web",
            client="e2e",
            vip_cidr="10.0.120.0/29",
            bandwidth_mbps=4,
            per_member_mbps=4,
            pool="servers",
            max_members=1,
            priority="silver",
            members=1,
        )
    except BaseException:
        stop_production(lab)
        raise
    return lab


def stop_production(lab: Lab) -> None:
    for client in (lab.slices, lab.prov):
        if client is not None:
            client.close()
    lab.stop()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = start_production(tmp_path_factory.mktemp("staging"))
    try:
        yield lab
    finally:
        stop_production(lab)


def checks(change) -> dict:
    return {c.name: c for c in change.staging.checks}


def delivered_mbps(detail: str) -> float:
    return float(re.search(r"delivered ([\d.]+) Mbit/s", detail).group(1))


def rehearsal_s(change) -> float:
    """Staging from start to end, less the in-memory checks: the rehearsal, rollback in the copy included."""
    memory = sum(c.duration_s for c in change.staging.checks if not c.name.startswith("rehearsal:"))
    return change.staging.finished_s - change.staging.started_s - memory


def copy_status(lab) -> dict:
    return json.loads((lab.copy_dir / "staging.json").read_text())


def meter_kbps(bridge: str) -> list[int]:
    out = subprocess.run(
        ["ovs-ofctl", "-O", "OpenFlow13", "dump-meters", bridge], capture_output=True, text=True, check=True
    ).stdout
    return sorted(int(r) for r in re.findall(r"rate=(\d+)", out))


def test_a_change_the_copy_carries_stages_and_deploys(lab):
    change = lab.prov.stage(template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 6})
    print(
        f"\n{change.id}: {pb.ChangeState.Name(change.state)} in {rehearsal_s(change):.1f} s of rehearsal "
        f"(first: copy brought up)"
    )
    for c in change.staging.checks:
        print(f"  {c.name}: {c.ok} {c.duration_s:.2f} s {c.detail}")
    assert change.state == pb.STAGED, change.detail
    assert [c.name for c in change.staging.checks] == ["verify", "covers-need", *REHEARSAL_CHECKS]
    rate = checks(change)["rehearsal:rate"]
    assert rate.detail.startswith("10.0.0.1 -> 10.0.120.1"), rate.detail
    assert "offered 6 Mbit/s (the promised rate)" in rate.detail
    assert delivered_mbps(rate.detail) >= 0.95 * 6
    assert checks(change)["rehearsal:reach"].detail == "no host pairs promised"

    done = lab.prov.deploy(change.id)
    assert done.state == pb.DEPLOYED, done.detail
    assert lab.slices.get("web").bandwidth_mbps == 6
    # The copy followed: its slice is at 6 too, by a change of its own held DEPLOYED.
    status = copy_status(lab)
    with SlicesClient(status["grpc"]) as copy_slices, ProvisioningClient(status["grpc"]) as copy_prov:
        assert copy_slices.get("web").bandwidth_mbps == 6
        held = [c for c in copy_prov.changes() if c.state == pb.DEPLOYED]
        assert [json.loads(c.params_json)["bandwidth_mbps"] for c in held] == [6]


def test_a_pinned_path_rehearses_both_ways_and_the_copy_follows_deploy_and_rollback(lab):
    params = {"src": "10.0.0.1", "dst": "10.0.0.3", "path": ["s1", "s2", "s3"], "mbps": 3}
    change = lab.prov.stage(template="od_path", params=params)
    print(f"\n{change.id}: {pb.ChangeState.Name(change.state)} in {rehearsal_s(change):.1f} s of rehearsal")
    for c in change.staging.checks:
        print(f"  {c.name}: {c.ok} {c.duration_s:.2f} s {c.detail}")
    assert change.state == pb.STAGED, change.detail
    assert [c.name for c in change.staging.checks][-3:] == REHEARSAL_CHECKS
    assert checks(change)["rehearsal:reach"].detail == "2 direction(s) reach"
    assert delivered_mbps(checks(change)["rehearsal:rate"].detail) >= 0.95 * 3
    assert rehearsal_s(change) < 10

    status = copy_status(lab)
    with ProvisioningClient(status["grpc"]) as copy_prov:

        def copy_states() -> list[str]:
            return [
                pb.ChangeState.Name(c.state) for c in copy_prov.changes() if c.template.startswith("od_path")
            ]

        before = copy_states()
        assert set(before) == {"ROLLED_BACK"}  # the rehearsal's own change, taken back
        assert lab.prov.deploy(change.id).state == pb.DEPLOYED
        assert copy_states() == ["DEPLOYED", *before]
        assert lab.prov.rollback(change.id, "e2e").state == pb.ROLLED_BACK
        assert copy_states() == ["ROLLED_BACK", *before]


def test_a_rate_the_copy_cannot_carry_fails_staging_and_production_is_untouched(lab):
    meters_before = {sw: meter_kbps(sw) for sw in ("s1", "s2", "s3")}
    assert 6000 in meters_before["s1"]
    change = lab.prov.stage(template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 20})
    print(f"\n{change.id}: {pb.ChangeState.Name(change.state)}: {change.detail}")
    assert change.state == pb.STAGE_FAILED
    by_name = checks(change)
    assert by_name["verify"].ok and by_name["covers-need"].ok  # fine in memory
    assert by_name["rehearsal:apply"].ok
    rate = by_name["rehearsal:rate"]
    assert not rate.ok
    assert "offered 20 Mbit/s" in rate.detail and "delivered below 95% of offered" in rate.detail
    assert delivered_mbps(rate.detail) < 11  # the copy's 10 Mbit/s links
    assert change.detail.startswith("rehearsal:rate: ")
    assert not change.HasField("deploy")
    # Production: the slice, its meters and the record as they were.
    assert lab.slices.get("web").bandwidth_mbps == 6
    assert {sw: meter_kbps(sw) for sw in ("s1", "s2", "s3")} == meters_before
    assert lab.prov.change(change.id).state == pb.STAGE_FAILED
    # The copy took its rehearsal back: its slice is at production's 6 again.
    with SlicesClient(copy_status(lab)["grpc"]) as copy_slices:
        assert copy_slices.get("web").bandwidth_mbps == 6


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a parent that does not reap counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _left(status: dict) -> list[str]:
    left = [f"pid {p}" for p in (status["keeper_pid"], status["controller_pid"]) if _alive(p)]
    bridges = subprocess.run(["ovs-vsctl", "list-br"], capture_output=True, text=True).stdout.split()
    left += [f"bridge {b}" for b in bridges if b.startswith(PREFIX)]
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    left += [f"interface {m}" for m in re.findall(r"^\d+: ([^:@]+)", links, re.M) if m.startswith(PREFIX)]
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(f"mininet:{PREFIX}".encode()) for a in argv):
            left.append(f"host shell {proc.name}")
    return left


def test_nothing_of_the_copy_is_left_after_the_lab_stops(lab):
    if not (lab.copy_dir / "staging.json").exists():
        lab.prov.stage(template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 5})
    status = copy_status(lab)
    assert status["bridges"] == ["sts1", "sts2", "sts3"]
    assert len(_left(status)) > 10  # the copy is up: 2 processes, 3 bridges, interfaces, host shells
    lab.stop()
    stopped = time.monotonic()
    deadline = stopped + 30
    while _left(status) and time.monotonic() < deadline:
        time.sleep(0.2)
    print(f"\ncopy gone {time.monotonic() - stopped:.1f} s after the lab stopped")
    assert _left(status) == []
    assert os.path.exists(lab.copy_dir / "keeper.log")


def test_a_killed_controller_takes_its_copy_with_it(tmp_path):
    """SIGKILL: the controller runs no handler at all; the keeper sees its parent go."""
    lab = start_production(tmp_path)
    try:
        change = lab.prov.stage(template="slice_bandwidth", params={"slice": "web", "bandwidth_mbps": 5})
        assert change.state == pb.STAGED, change.detail
        status = copy_status(lab)
        assert len(_left(status)) > 10
        lab.controller.proc.kill()
        lab.controller.proc.wait(10)
        killed = time.monotonic()
        while _left(status) and time.monotonic() < killed + 30:
            time.sleep(0.2)
        print(f"\ncopy gone {time.monotonic() - killed:.1f} s after the controller was killed")
        assert _left(status) == []
    finally:
        stop_production(lab)
