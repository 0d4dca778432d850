"""OpenFlow bundles (ONF EXT-230 over OpenFlow 1.3) against a real Open vSwitch bridge
(userspace datapath), sent as ``controller.bundles`` builds them over a bare OpenFlow
connection (``tests.lib.ofchannel``): what ``controller.bundles`` says of OVS 3.1 is
checked here.

- A bundle of many flow-mods changes nothing until its commit, then all of it.
- A group-mod and the flows that send to it go in one bundle; a meter-mod is refused
  in a bundle (``ONFERR_ET_MSG_UNSUP``).
- One message refused when added (an output beyond OVS's ports) answers its add and
  is dropped from the bundle: the check barrier sees the error, the bundle is
  discarded and the table is exactly as before. One refused at commit (a flow sending
  to a missing group) fails the commit: the table is exactly as before, the errors
  name the refused message (by its add's xid) and the failed commit.
- Rollback: the plan from the changed state back to the previous one, as one bundle,
  restores the previous table.

The controller process with ``controller.sync.bundles`` on is
``test_ovs_refusals.py`` (parametrised).
"""

from __future__ import annotations

import os
import subprocess

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import bundles, cookies, desired, flows, meters, refusals
from controller.bundles import BundleCommit, BundleDiscard
from controller.desired import Entries
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec
from tests.lib.ofchannel import OFChannel
from tests.lib.ovs_lab import run

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

COOKIE = cookies.cookie("slices", 1)
GID = cookies.group_id("slices", 1)
MID = cookies.meter_id("slices", 1)
N_FLOWS = 500


def dest_flow(i: int, port: int, group: int | None = None):
    actions = [("group", group)] if group is not None else [("output", port)]
    return flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": f"10.77.{i >> 8}.{i & 0xff}"}, actions,
                cookie=COOKIE)


def entries(*specs) -> Entries:
    return Entries(flows={s.key: s for s in specs if isinstance(s, flows.FlowSpec)},
                   groups={g.group_id: g for g in specs if isinstance(g, GroupSpec)})


@pytest.fixture
def bridge():
    """A secure netdev bridge with two internal ports (1, 2), connected to a bare channel."""
    ensure = subprocess.run(["ovs-vsctl", "show"], capture_output=True)
    if ensure.returncode:
        pytest.skip("Open vSwitch is not running")
    name = f"fsb{os.getpid() % 100000}"
    with OFChannel.listen() as chan:
        try:
            run("ovs-vsctl", "--", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
                "fail_mode=secure", "protocols=OpenFlow13")
            for port in (1, 2):
                run("ovs-vsctl", "add-port", name, f"{name}p{port}", "--", "set", "interface",
                    f"{name}p{port}", "type=internal", f"ofport_request={port}")
            run("ovs-vsctl", "set-controller", name, chan.target)
            chan.accept()
            yield name, chan
        finally:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], capture_output=True)


def table(name: str) -> list[str]:
    out = run("ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", name)
    # (--no-stats prints no reply header with OpenFlow 1.3: every line is a flow.)
    return sorted(line.strip() for line in out.splitlines() if line.strip() and "_FLOW reply" not in line)


def apply(chan, generation: int, want: Entries, have: Entries) -> tuple[list, list]:
    """The plan from ``have`` to ``want`` as one bundle, checked: (errors before the check's
    reply, errors after the commit or discard)."""
    msgs, pending = bundles.wrap(generation, desired.plan(want, have).messages())
    checked = [m for m in chan.request(msgs) if isinstance(m, parser.OFPErrorMsg)]
    end = BundleDiscard(generation) if checked else BundleCommit(generation)
    ended = [m for m in chan.request([end] + (pending.after if not checked else []))
             if isinstance(m, parser.OFPErrorMsg)]
    return checked, ended


def test_a_bundle_of_many_flow_mods_changes_nothing_until_its_commit_then_everything(bridge):
    name, chan = bridge
    want = entries(*(dest_flow(i, 1) for i in range(N_FLOWS)))
    msgs, _ = bundles.wrap(1, desired.plan(want, Entries()).messages())
    assert not [m for m in chan.request(msgs) if isinstance(m, parser.OFPErrorMsg)]
    assert table(name) == []                            # opened, filled, checked: not applied
    assert not [m for m in chan.request([BundleCommit(1)]) if isinstance(m, parser.OFPErrorMsg)]
    assert len(table(name)) == N_FLOWS
    # Re-pointing them all is one commit too.
    moved = entries(*(dest_flow(i, 2) for i in range(N_FLOWS)))
    assert apply(chan, 2, moved, want) == ([], [])
    assert all(line.endswith("actions=output:2") for line in table(name))


def test_a_group_and_the_flows_using_it_go_in_one_bundle_and_a_meter_mod_cannot(bridge):
    name, chan = bridge
    group = GroupSpec(GID, "indirect", (Bucket((("output", 2),)),))
    want = entries(group, *(dest_flow(i, 0, group=GID) for i in range(3)))
    assert apply(chan, 1, want, Entries()) == ([], [])
    assert len(table(name)) == 3
    assert f"group_id={GID}" in run("ovs-ofctl", "-O", "OpenFlow13", "dump-groups", name)
    meter = meters.to_add(MeterSpec(MID, rate_kbps=1000))
    got = chan.request([bundles.BundleOpen(2), bundles.BundleAdd(2, meter), BundleDiscard(2)])
    (error,) = [m for m in got if isinstance(m, parser.OFPErrorMsg)]
    assert refusals.error_name(error) == "OFPET_EXPERIMENTER/ONFERR_ET_MSG_UNSUP"


def test_a_message_refused_when_added_leaves_the_table_exactly_as_before(bridge):
    name, chan = bridge
    have = entries(*(dest_flow(i, 1) for i in range(50)))
    assert apply(chan, 1, have, Entries()) == ([], [])
    before = table(name)
    bad = dest_flow(50, 0x10000)                        # OpenFlow 1.3 takes it; OVS's ports stop below 0xff00
    want = entries(*(dest_flow(i, 2) for i in range(50)), bad)
    msgs, _ = bundles.wrap(2, desired.plan(want, have).messages())
    got = chan.request(msgs)
    (error,) = [m for m in got if isinstance(m, parser.OFPErrorMsg)]
    assert refusals.error_name(error) == "OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT"
    (add,) = [m for m in msgs if m.xid == error.xid]    # the error names the add of the refused flow
    assert refusals.refused_entry(add) == bad
    assert table(name) == before                        # nothing yet ...
    assert not [m for m in chan.request([BundleDiscard(2)]) if isinstance(m, parser.OFPErrorMsg)]
    assert table(name) == before                        # ... and, discarded, nothing ever


def test_a_bundle_refused_at_commit_leaves_the_table_exactly_as_before(bridge):
    name, chan = bridge
    have = entries(*(dest_flow(i, 1) for i in range(50)))
    assert apply(chan, 1, have, Entries()) == ([], [])
    before = table(name)
    want = entries(*(dest_flow(i, 2) for i in range(49)), dest_flow(49, 0, group=GID))   # GID is missing
    msgs, _ = bundles.wrap(2, desired.plan(want, have).messages())
    assert not [m for m in chan.request(msgs) if isinstance(m, parser.OFPErrorMsg)]     # added fine
    commit = BundleCommit(2)
    errors = [m for m in chan.request([commit]) if isinstance(m, parser.OFPErrorMsg)]
    assert [refusals.error_name(e) for e in errors] == ["OFPET_BAD_ACTION/OFPBAC_BAD_OUT_GROUP",
                                                       "OFPET_EXPERIMENTER/ONFERR_ET_FAILED"]
    (add,) = [m for m in msgs if m.xid == errors[0].xid]
    assert refusals.refused_entry(add) == dest_flow(49, 0, group=GID)
    assert errors[1].xid == commit.xid
    assert table(name) == before


def test_rollback_as_one_bundle_restores_the_previous_table(bridge):
    name, chan = bridge
    previous = entries(*(dest_flow(i, 1) for i in range(N_FLOWS)))
    assert apply(chan, 1, previous, Entries()) == ([], [])
    before = table(name)
    changed = entries(*(dest_flow(i, 2) for i in range(N_FLOWS)),
                      *(dest_flow(N_FLOWS + i, 2) for i in range(10)))
    assert apply(chan, 2, changed, previous) == ([], [])
    assert table(name) != before
    assert apply(chan, 3, previous, changed) == ([], [])
    assert table(name) == before

