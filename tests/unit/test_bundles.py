"""OpenFlow bundles (controller.bundles, controller.deploys): with ``controller.sync.bundles``
each switch's share of a sync goes as one bundle that the fake switches apply as Open
vSwitch does (tests/lib/fakebundles.py): all of it or nothing. A message refused when
added discards the whole bundle; one refused at commit fails it; either way the switch
never holds part of the change, the refusal is reported as a plain one is (switch and
OpenFlow error named) and the switch is reconciled. A switch without bundles falls
back to plain messages. ``restore`` rolls switches back to a copy of what they held."""

import struct

import pytest
from os_ken.ofproto import ofproto_common, ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from prometheus_client import generate_latest

from controller import bundles, cookies, flows, groups, meters, refusals
from controller.bundles import BundleAdd, BundleCheck, BundleCommit, BundleDiscard, BundleOpen
from controller.core import ChangeRefused, SyncBarrier
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec
from controller.metrics import registry_for
from tests.lib.fakebundles import onf_error
from tests.lib.fakeoftable import encode, error_reply, ipv4_frame, triangle
from tests.lib.intent_provider import IntentProvider, want

COOKIE = cookies.cookie("slices", 1)
GID = cookies.group_id("slices", 1)
MID = cookies.meter_id("slices", 1)
BEYOND_OVS_PORTS = 0x10000       # OpenFlow 1.3 takes it; Open vSwitch refuses it when it decodes the flow
S1 = "s1 (dp 0000000000000001)"
N_DESTS = 20




def dest_flow(i: int, port: int, group: int | None = None, meter: int | None = None):
    actions = [("group", group)] if group is not None else [("output", port)]
    return flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": f"10.9.0.{i}"}, actions, cookie=COOKIE,
                meter=meter)


def dests(port: int) -> list:
    return [dest_flow(i, port) for i in range(1, N_DESTS + 1)]


@pytest.fixture
def net():
    network = triangle(fast_failover=False, packet_in_pps=0, bundles=True)
    network.REFUSE_WITH_ERRORS = True
    network.stub = IntentProvider()
    network.core.add_provider(network.stub)
    want(network, 1)
    return network


def classify(net, dp_id: int = 1) -> set:
    return {s for s in net.switches[dp_id].specs() if s.table == "classify" and s.cookie == COOKIE}


def sent_since(net, start: int, kind, dp_id: int = 1) -> list:
    return [m for dp, m in net.sent[start:] if dp == dp_id and isinstance(m, kind)]


def record_commits(net) -> list:
    """Every state of s1's classify flows a commit left, in order."""
    seen = []
    commit = net.bundles._commit

    def recording(dp_id, key, msg):
        commit(dp_id, key, msg)
        if dp_id == 1:
            seen.append(frozenset(classify(net)))
    net.bundles._commit = recording
    return seen


# ---- building ---------------------------------------------------------------------------------------

def test_a_sync_share_is_split_around_a_bundle_meters_outside_and_barriers_dropped():
    meter_add = meters.to_add(MeterSpec(MID, rate_kbps=1000))
    meter_del = meters.to_delete(MID)
    add, delete = flows.to_flowmod(dest_flow(1, 2)), flows.to_delete(dest_flow(2, 2))
    msgs, pending = bundles.wrap(7, [meter_add, flows.barrier(), add, flows.barrier(), delete, meter_del])
    assert msgs[0] is meter_add
    assert isinstance(msgs[1], BundleOpen) and msgs[1].bundle_id == 7
    assert [m.message for m in msgs[2:4]] == [add, delete]
    assert isinstance(msgs[4], BundleCheck) and msgs[4].generation == 7 and len(msgs) == 5
    assert pending.after == [meter_del] and pending.size == 2
    only_meters = [meter_add]
    assert bundles.wrap(8, only_meters) == (only_meters, None)


def test_an_added_message_carries_the_xid_of_its_add_on_the_wire():
    add = BundleAdd(3, flows.to_flowmod(dest_flow(1, 2)))
    add.xid = 41
    buf = encode(add)
    _, msg_type, length, xid = ofproto_parser.header(buf)
    assert (msg_type, length, xid) == (ofp.OFPT_EXPERIMENTER, len(buf), 41)
    experimenter, exp_type, bundle_id, flags = struct.unpack_from("!IIIxxH", buf, ofp.OFP_HEADER_SIZE)
    assert (experimenter, exp_type) == (ofproto_common.ONF_EXPERIMENTER_ID, ofp.ONF_ET_BUNDLE_ADD_MESSAGE)
    assert (bundle_id, flags) == (3, bundles.FLAGS)
    inner = buf[ofp.OFP_HEADER_SIZE + 16:]
    _, inner_type, inner_length, inner_xid = ofproto_parser.header(inner)
    assert (inner_type, inner_length, inner_xid) == (ofp.OFPT_FLOW_MOD, len(inner), 41)


def test_onf_bundle_errors_are_named():
    msg = error_reply(BundleCommit(5), onf_error("failed", ofp.ONFERR_ET_FAILED))
    assert bundles.is_bundle_error(msg)
    assert refusals.error_name(msg) == "OFPET_EXPERIMENTER/ONFERR_ET_FAILED"


# ---- applying ---------------------------------------------------------------------------------------

def test_with_bundles_paths_and_provider_flows_land_as_bundles_and_nothing_goes_plain(net):
    start = len(net.sent)
    net.announce("h1", "h2", "h3")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h2")))
    want(net, 1, *dests(2))
    assert net.trace("h1", "h2")
    assert classify(net) == set(dests(2))
    assert net.out_of_sync() == {}
    assert not [m for _, m in net.sent[start:] if isinstance(m, (parser.OFPFlowMod, parser.OFPGroupMod))]
    assert net.core.counters["bundles_committed"] >= 3 and net.bundles.committed >= 3
    assert not net.bundles.open and not net.errors
    text = generate_latest(registry_for(net.core)).decode()
    assert f'foresight_bundles_total{{outcome="committed"}} {float(net.bundles.committed)}' in text


def test_each_commit_is_followed_by_the_syncs_barrier_and_confirms_the_change(net):
    before = net.core.sync_mark()
    start = len(net.sent)
    want(net, 1, *dests(2))
    kinds = [type(m) for m in [m for dp, m in net.sent[start:] if dp == 1]]
    assert kinds[0] is BundleOpen and kinds[-3:] == [BundleCheck, BundleCommit, SyncBarrier]
    assert set(kinds[1:-3]) == {BundleAdd}
    mark = net.core.sync_mark(since=before)
    assert net.core.wait_confirmed(mark, 0.1)


def test_a_bundle_with_one_message_refused_when_added_is_discarded_whole(net):
    want(net, 1, *dests(2))
    states = record_commits(net)
    before = net.core.sync_mark()
    start = len(net.sent)
    bad = dest_flow(N_DESTS + 1, BEYOND_OVS_PORTS)
    want(net, 1, *dests(3), bad)
    assert sent_since(net, start, BundleDiscard)
    assert net.bundles.discarded == 1 and net.core.counters["bundles_discarded"] == 1
    with pytest.raises(ChangeRefused) as err:
        net.core.wait_confirmed(net.core.sync_mark(since=before), 1.0)
    assert err.value.dp_ids == [1]
    assert str(err.value) == f"{S1} refused flow {bad.describe()}: OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT"
    # Never a state in between: the discarded bundle changed nothing, the reconciliation
    # then landed the rest of the change (without the refused flow) as one bundle.
    assert states == [frozenset(dests(3))]
    assert classify(net) == set(dests(3))
    assert net.out_of_sync() == {}


def test_a_bundle_that_fails_at_commit_changes_nothing_and_is_sent_again_once_the_switch_is_read(net):
    group = GroupSpec(GID, "indirect", (Bucket((("output", 2),)),))
    held = GroupSpec(GID, "indirect", (Bucket((("output", 1),)),))
    net.switches[1].apply(groups.to_add(held))      # behind the core's back
    states = record_commits(net)
    want(net, 1, group, *(dest_flow(i, 0, group=GID) for i in range(1, 4)))
    # The group the core did not know about fails the commit (OFPGMFC_GROUP_EXISTS): nothing
    # applied; the switch is dumped and the change goes again, modifying the group.
    names = [refusals.error_name(e) for _, e in net.errors]
    assert names == ["OFPET_GROUP_MOD_FAILED/OFPGMFC_GROUP_EXISTS", "OFPET_EXPERIMENTER/ONFERR_ET_FAILED"]
    assert net.core.counters["bundles_refused"] == 1
    assert states[0] == frozenset() and len(states) == 2
    assert classify(net) == {dest_flow(i, 0, group=GID) for i in range(1, 4)}
    assert net.switches[1].group_specs() == {group}
    assert net.out_of_sync() == {}


def test_meters_go_before_the_bundle_and_their_deletions_after_it(net):
    meter = MeterSpec(MID, rate_kbps=1000)
    start = len(net.sent)
    want(net, 1, meter, dest_flow(1, 2, meter=MID))
    sent = [m for dp, m in net.sent[start:] if dp == 1]
    assert isinstance(sent[0], parser.OFPMeterMod) and isinstance(sent[1], BundleOpen)
    assert net.out_of_sync() == {} and not net.errors
    start = len(net.sent)
    want(net, 1)            # the flow and its meter go in one step: the meter after the commit
    sent = [m for dp, m in net.sent[start:] if dp == 1]
    assert [type(m) for m in sent[-3:]] == [BundleCommit, parser.OFPMeterMod, SyncBarrier]
    assert sent[-2].command == ofp.OFPMC_DELETE
    assert net.switches[1].meter_specs() == set() and net.out_of_sync() == {}


def test_a_switch_without_bundles_refuses_the_change_once_then_gets_plain_messages(net):
    net.bundles.supported = False
    before = net.core.sync_mark()
    want(net, 1, *dests(2))
    with pytest.raises(ChangeRefused) as err:
        net.core.wait_confirmed(net.core.sync_mark(since=before), 1.0)
    assert str(err.value) == (f"{S1} refused the bundle of its change: OFPET_BAD_REQUEST/"
                              f"OFPBRC_BAD_EXPERIMENTER; nothing of it applied")
    assert net.core.switches[1].no_bundles
    assert classify(net) == set(dests(2)) and net.out_of_sync() == {}
    start = len(net.sent)
    want(net, 1, *dests(3))
    assert sent_since(net, start, parser.OFPFlowMod) and not sent_since(net, start, BundleOpen)
    assert classify(net) == set(dests(3))
    assert net.core.counters["openflow_refusals"] == 1


def test_make_before_break_across_switches_holds_with_bundles():
    net = triangle(fast_failover=False, packet_in_pps=0, bundles=True)
    net.announce("h1", "h2", "h3")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h2")))
    assert net.trace("h1", "h2") == [1, 2]
    start = len(net.sent)
    net.link_down(1, 1)                 # h1 -> h2 goes 1-3-2
    assert net.trace("h1", "h2") == [1, 3, 2]
    commits = [(dp, m.generation) for dp, m in net.sent[start:] if isinstance(m, BundleCommit)]
    # s3's new hop is committed (and confirmed) in an earlier step than s1's turn onto it.
    first = {dp: min(g for d, g in commits if d == dp) for dp, _ in commits}
    assert first[3] < first[1]


# ---- rollback ---------------------------------------------------------------------------------------

def test_restore_rolls_a_switch_back_atomically_until_released(net):
    want(net, 1, *dests(2))
    previous = net.core.installed_state(1)
    want(net, 1, *dests(3), dest_flow(N_DESTS + 1, 3))
    states = record_commits(net)
    with net.core.lock:
        net.deliver(net.core.restore({1: previous}, net.now, whole=True))
    assert classify(net) == set(dests(2))
    assert states == [frozenset(dests(2))]          # one commit: the whole previous state
    assert net.core.wait_confirmed(net.core.sync_mark(), 0.1)
    want(net, 1, *dests(3))                         # pinned: what providers want waits
    assert classify(net) == set(dests(2))
    with net.core.lock:
        net.deliver(net.core.release([1], net.now))
    assert classify(net) == set(dests(3)) and net.out_of_sync() == {}


def test_a_restore_in_steps_changes_before_it_deletes_each_step_one_bundle(net):
    want(net, 1, *dests(2))
    previous = net.core.installed_state(1)
    want(net, 1, *dests(3), dest_flow(N_DESTS + 1, 3))
    states = record_commits(net)
    with net.core.lock:
        net.deliver(net.core.restore({1: previous}, net.now))
    assert states == [frozenset(dests(2)) | {dest_flow(N_DESTS + 1, 3)}, frozenset(dests(2))]
    assert net.core.wait_confirmed(net.core.sync_mark(), 0.1)
