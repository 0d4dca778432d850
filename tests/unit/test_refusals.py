"""Refused OpenFlow messages (controller.refusals, core.refused): fake switches that
answer what Open vSwitch refuses with the OpenFlow error it sends, handled the way the
shell handles it. A refused flow-, group- or meter-mod fails the enforcing wait naming
the switch and the error, is counted, gets the switch dumped and reconciled without
the refused entry, and is not sent again until its owner wants something else."""

import logging
import re
import threading
import time

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto.ofproto_protocol import ProtocolDesc
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller import api, cookies, flows, groups, meters, refusals
from controller.core import ChangeRefused, SyncBarrier
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec
from controller.metrics import registry_for
from tests.lib.fakeoftable import FakeOFTable, Refused, encode, error_reply, ipv4_frame, triangle
from tests.lib.intent_provider import IntentProvider, want

VIP_IP = "10.0.0.100"
COOKIE = cookies.cookie("slices", 1)
GID = cookies.group_id("slices", 1)
MID = cookies.meter_id("slices", 1)
BEYOND_OVS_PORTS = 0x10000       # a valid OpenFlow 1.3 port number; OVS's stop below 0xff00
S1 = "s1 (dp 0000000000000001)"
BAD_OUT_PORT = "OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT"
STAYS = "slice 'web' is created and stays so"




def vip_flow(port: int, meter: int | None = None, group: int | None = None):
    actions = [("group", group)] if group is not None else [("output", port)]
    return flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": VIP_IP}, actions, cookie=COOKIE,
                meter=meter)


@pytest.fixture
def net():
    """A triangle whose switches answer what they refuse with OpenFlow errors; a path
    h1 -> h2 installed; a provider with nothing wanted yet."""
    network = triangle(fast_failover=False, packet_in_pps=0)
    network.REFUSE_WITH_ERRORS = True
    network.announce("h1", "h2", "h3")
    network.send("h1", ipv4_frame(network.host("h1"), network.host("h2")))
    network.stub = IntentProvider()
    network.core.add_provider(network.stub)
    with network.core.lock:                 # the app's own tables' misses, confirmed
        network.deliver(network.core.resync(network.now))
    return network


def errors_exported(core) -> dict[str, float]:
    """``foresight_errors{kind}`` as a Prometheus scrape shows it."""
    text = generate_latest(registry_for(core)).decode()
    return {s.labels["kind"]: s.value for family in text_string_to_metric_families(text)
            if family.name == "foresight_errors" for s in family.samples}


def sent_to(net, dp_id: int, kind) -> list:
    return [m for dp, m in net.sent if dp == dp_id and isinstance(m, kind)]


def vip_flows_sent(net) -> list:
    return [m for m in sent_to(net, 1, parser.OFPFlowMod) if m.priority == 100 and m.table_id == 1]


# ---- the enforcing wait -------------------------------------------------------------------------

def test_a_refused_flow_mod_fails_the_enforcing_wait_naming_the_switch_and_the_error(net):
    arrived = api.arrival(net.core)
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    with pytest.raises(api.EnforceRefused) as err:
        api.wait_enforced(net.core, arrived, 5.0, STAYS)
    message = str(err.value)
    assert message.startswith(f"{S1} refused flow classify/100 eth_type=2048,ipv4_dst={VIP_IP} "
                              f"-> output:65536: "
                              f"{BAD_OUT_PORT}; {STAYS} in the controller's intent")
    assert err.value.dp_ids == [1]
    assert net.core.counters["barrier_waits_refused"] == 1


def test_the_core_wait_raises_change_refused_with_the_switches_and_errors(net):
    before = net.core.sync_mark()
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    mark = net.core.sync_mark(since=before)
    assert net.core.unconfirmed(mark) == []         # reconciled and confirmed, without the flow...
    with pytest.raises(ChangeRefused) as err:       # ... which is why the wait must not say True
        net.core.wait_confirmed(mark, 5.0)
    assert err.value.dp_ids == [1]
    assert err.value.errors == [f"{S1} refused flow {vip_flow(BEYOND_OVS_PORTS).describe()}: {BAD_OUT_PORT}"]


def test_a_refusal_wakes_a_wait_in_progress(net):
    net.ANSWER_BARRIERS = False         # the change stays unconfirmed: the wait blocks
    want(net, 1, vip_flow(2))
    mark = net.core.sync_mark()
    assert net.core.unconfirmed(mark) == [1]
    outcome = []

    def wait():
        started = time.monotonic()
        try:
            net.core.wait_confirmed(mark, 10.0)
        except ChangeRefused as err:
            outcome.append((time.monotonic() - started, err.dp_ids))
    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.2)
    net.core.refused(1, mark[1], vip_flow(2), "OFPET_FLOW_MOD_FAILED/OFPFMFC_TABLE_FULL", net.now)
    waiter.join(5.0)
    assert outcome and outcome[0][0] < 5.0 and outcome[0][1] == [1]


def test_barrier_confirmations_without_errors_still_enforce(net):
    arrived = api.arrival(net.core)
    want(net, 1, vip_flow(2))
    assert api.wait_enforced(net.core, arrived, 5.0, STAYS) >= 0.0
    assert net.core.counters["openflow_refusals"] == 0 and not net.errors
    assert vip_flow(2) in net.switches[1].specs()


def test_an_earlier_refusal_does_not_fail_a_later_wait(net):
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    arrived = api.arrival(net.core)                 # after the refusal was reported and reconciled
    want(net, 2, flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": "10.0.0.101"}, [("output", 3)],
                      cookie=COOKIE))
    assert api.wait_enforced(net.core, arrived, 5.0, STAYS) >= 0.0


def test_a_bare_start_time_still_reports_a_refusal_not_yet_confirmed(net):
    net.ANSWER_BARRIERS = False
    want(net, 1, vip_flow(2))
    started = time.monotonic()
    mark_before = net.core.sync_mark()
    refuse = threading.Timer(0.2, lambda: net.core.refused(1, mark_before[1], vip_flow(2), BAD_OUT_PORT,
                                                           net.now))
    refuse.start()
    with pytest.raises(api.EnforceRefused, match=BAD_OUT_PORT):
        api.wait_enforced(net.core, started, 5.0, STAYS)
    refuse.join()


# ---- counted, logged, reconciled ----------------------------------------------------------------

def test_the_switch_answers_with_a_real_openflow_error_for_the_refused_message(net):
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    ((dp_id, error),) = net.errors
    (refused,) = [m for m in vip_flows_sent(net) if m.xid == error.xid]
    assert dp_id == 1 and isinstance(error, parser.OFPErrorMsg)
    assert (error.type, error.code) == (ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_PORT)
    assert bytes(error.data) == encode(refused)      # the whole message echoed, as OVS does


def test_a_refusal_is_counted_logged_and_exported(net, caplog):
    with caplog.at_level(logging.ERROR):
        want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    assert (net.core.counters["openflow_refusals"], net.core.counters["openflow_errors"]) == (1, 1)
    assert f"{S1} refused flow {vip_flow(BEYOND_OVS_PORTS).describe()}: {BAD_OUT_PORT}" in caplog.text
    assert ("refused by the switch: flow classify/100 eth_type=2048,ipv4_dst=10.0.0.100 -> output:65536 "
            f"({BAD_OUT_PORT}); left out until its owner wants something else there") in caplog.text
    exported = errors_exported(net.core)
    assert (exported["openflow_refusals"], exported["openflow_errors"]) == (1, 1)


def test_the_switch_is_dumped_again_and_reconciled_against_what_it_holds(net):
    want(net, 1, vip_flow(2))                       # installed...
    dumps = len(sent_to(net, 1, parser.OFPFlowStatsRequest))
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))        # ... then changed to what the switch refuses
    assert len(sent_to(net, 1, parser.OFPFlowStatsRequest)) == dumps + 1
    assert net.core.switches[1].reconciled
    # The switch kept the old flow when it refused the change; the dump showed it, and
    # since the refused value is left out, the key is wanted empty: the old flow goes.
    assert vip_flow(2).key not in {s.key for s in net.switches[1].specs()}
    assert vip_flow(2).key not in net.core.desired(1, net.now).flows
    assert net.out_of_sync() == {}
    assert net.trace("h1", "h2") == [1, 2]          # other flows unaffected


def test_the_refused_entry_is_not_sent_again_in_a_loop(net):
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    sent, dumps = len(vip_flows_sent(net)), len(sent_to(net, 1, parser.OFPFlowStatsRequest))
    assert sent == 1
    for _ in range(3):
        with net.core.lock:
            net.deliver(net.core.resync(net.now))
    net.run(5.0)
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h3")))    # other changes go on
    assert len(vip_flows_sent(net)) == sent
    assert len(sent_to(net, 1, parser.OFPFlowStatsRequest)) == dumps
    assert len(net.errors) == 1 and net.out_of_sync() == {}


def test_a_different_value_for_the_key_is_sent_and_enforced(net):
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    arrived = api.arrival(net.core)
    want(net, 1, vip_flow(2))
    assert api.wait_enforced(net.core, arrived, 5.0, STAYS) >= 0.0
    assert vip_flow(2) in net.switches[1].specs()
    assert net.core.switches[1].refused == {}
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))        # asked again after something else: tried again
    assert len(net.errors) == 2


def test_a_switch_that_reconnects_is_sent_the_refused_entry_again(net):
    want(net, 1, vip_flow(BEYOND_OVS_PORTS))
    net.disconnect(1)
    net.connect(1)
    assert len(vip_flows_sent(net)) == 2 and len(net.errors) == 2
    assert net.out_of_sync() == {}


def test_what_uses_a_refused_group_is_left_out_too(net):
    bad_group = GroupSpec(GID, "all", (Bucket(actions=(("output", BEYOND_OVS_PORTS),)),))
    arrived = api.arrival(net.core)
    want(net, 1, bad_group, vip_flow(0, group=GID))
    refused = re.escape(f"refused {bad_group.describe()}: {BAD_OUT_PORT}")
    with pytest.raises(api.EnforceRefused, match=refused):
        api.wait_enforced(net.core, arrived, 5.0, STAYS)
    assert GID not in net.switches[1].groups
    assert vip_flow(0, group=GID).key not in net.core.desired(1, net.now).flows
    assert net.out_of_sync() == {}
    sent = len(net.sent)
    with net.core.lock:
        net.deliver(net.core.resync(net.now))
    assert net.sent[sent:] == []


def test_a_meter_the_switch_has_no_room_for_fails_the_wait_and_leaves_out_its_flows(net):
    net.switches[1].max_meters = 0
    arrived = api.arrival(net.core)
    want(net, 1, MeterSpec(MID, 2000, 200), vip_flow(2, meter=MID))
    with pytest.raises(api.EnforceRefused, match="OFPET_METER_MOD_FAILED/OFPMMFC_OUT_OF_METERS"):
        api.wait_enforced(net.core, arrived, 5.0, STAYS)
    assert net.switches[1].meters == {}
    assert vip_flow(2, meter=MID).key not in {s.key for s in net.switches[1].specs()}
    assert net.out_of_sync() == {}


def test_an_out_of_sync_refusal_is_answered_by_the_dump_and_sent_once_more(net):
    group = GroupSpec(GID, "all", (Bucket(actions=(("output", 2),)),))
    want(net, 1, group, vip_flow(0, group=GID))
    net.switches[1].apply(groups.to_delete(GID))    # behind the controller's back (with its flow)
    arrived = api.arrival(net.core)
    changed = GroupSpec(GID, "all", (Bucket(actions=(("output", 1),)),))
    want(net, 1, changed, vip_flow(0, group=GID))   # a modify: the switch has no such group
    assert [refusals.error_name(e) for _, e in net.errors] == ["OFPET_GROUP_MOD_FAILED/OFPGMFC_UNKNOWN_GROUP"]
    assert api.wait_enforced(net.core, arrived, 5.0, STAYS) >= 0.0
    assert net.switches[1].group_specs() == {changed}
    assert net.out_of_sync() == {}
    counters = net.core.counters
    assert (counters["openflow_refusals"], counters["openflow_refusals_retried"]) == (1, 1)


def test_an_error_for_an_unknown_xid_is_only_counted_and_logged(net, caplog):
    out = parser.OFPPacketOut(ProtocolDesc(ofp.OFP_VERSION), buffer_id=ofp.OFP_NO_BUFFER, in_port=1,
                              actions=[parser.OFPActionOutput(2)], data=b"x" * 60)
    out.xid = 424242
    error = error_reply(out, Refused("", ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_LEN))
    sent = len(net.sent)
    with caplog.at_level(logging.ERROR):
        assert refusals.error_received(net.core, net.in_flight, 1, error, net.now) == []
    assert (net.core.counters["openflow_errors"], net.core.counters["openflow_refusals"]) == (1, 0)
    assert f"{S1}: OpenFlow error OFPET_BAD_REQUEST/OFPBRC_BAD_LEN for OFPT_PACKET_OUT (xid 424242)" \
        in caplog.text
    assert net.sent[sent:] == [] and net.core.switches[1].reconciled


def test_an_error_from_an_earlier_connection_is_only_counted(net):
    want(net, 1, vip_flow(2))
    msg = vip_flows_sent(net)[-1]
    error = error_reply(msg, Refused("", ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_PORT))
    assert refusals.error_received(net.core, None, 1, error, net.now) == []
    assert (net.core.counters["openflow_errors"], net.core.counters["openflow_refusals"]) == (1, 0)


# ---- the pieces ---------------------------------------------------------------------------------

def test_in_flight_remembers_mods_until_their_generation_is_confirmed():
    in_flight = refusals.InFlight()
    mods = [flows.to_flowmod(vip_flow(p)) for p in (1, 2, 3)]
    for xid, msg in enumerate([mods[0], mods[1], SyncBarrier(7), mods[2], SyncBarrier(8)], start=1):
        msg.xid = xid
        in_flight.sent(1, msg)
    plain = flows.barrier()
    plain.xid = 99
    in_flight.sent(1, plain)
    assert len(in_flight) == 3
    assert in_flight.refused(1, 2) == refusals.Sent(mods[1], 7)
    assert in_flight.refused(1, 2) is None          # one error per message
    assert in_flight.barrier_replied(1, 99) is None  # a barrier between phases confirms nothing
    assert in_flight.barrier_replied(1, 3) == 7
    assert in_flight.refused(1, 1) is None and len(in_flight) == 1
    assert in_flight.refused(1, 4) == refusals.Sent(mods[2], 8)
    assert in_flight.barrier_replied(1, 5) == 8 and len(in_flight) == 0


def test_in_flight_forgets_a_switch_and_stays_bounded():
    in_flight = refusals.InFlight(limit=3)
    for xid in range(1, 6):
        msg = flows.to_flowmod(vip_flow(xid))
        msg.xid = xid
        in_flight.sent(1, msg)
    assert len(in_flight) == 3 and in_flight.dropped == 2
    assert in_flight.refused(1, 1) is None and in_flight.refused(1, 5).generation is None
    in_flight.forget(1)
    assert len(in_flight) == 0 and in_flight.refused(1, 4) is None


def test_the_network_keeps_nothing_in_flight_once_barriers_are_answered(net):
    want(net, 1, vip_flow(2), MeterSpec(MID, 2000, 200))
    assert len(net.in_flight) == 0


@pytest.mark.parametrize("type_, code, name", [
    (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_BAD_BAND, "OFPET_METER_MOD_FAILED/OFPMMFC_BAD_BAND"),
    (ofp.OFPET_BAD_MATCH, ofp.OFPBMC_BAD_PREREQ, "OFPET_BAD_MATCH/OFPBMC_BAD_PREREQ"),
    (ofp.OFPET_GROUP_MOD_FAILED, 999, "OFPET_GROUP_MOD_FAILED/code 999"),
    (77, 1, "type 77/code 1"),
])
def test_error_names_are_openflows(type_, code, name):
    assert refusals.error_name(parser.OFPErrorMsg(None, type_=type_, code=code)) == name


def test_an_experimenter_error_is_named_by_its_experimenter():
    error = parser.OFPErrorMsg(None, type_=ofp.OFPET_EXPERIMENTER, exp_type=3, experimenter=0x2320)
    assert refusals.error_name(error) == "OFPET_EXPERIMENTER/exp_type 3 of experimenter 0x2320"


def test_a_refused_mod_is_read_back_as_the_entry_it_carried():
    group = GroupSpec(GID, "select", (Bucket(2, None, (("output", 1),)), Bucket(1, None, (("output", 2),))))
    meter = MeterSpec(MID, rate_pps=100, burst_pkts=10)
    assert refusals.refused_entry(flows.to_flowmod(vip_flow(2, meter=MID))) == vip_flow(2, meter=MID)
    assert refusals.refused_entry(groups.to_modify(group)) == group
    assert refusals.refused_entry(meters.to_add(meter)) == meter
    assert refusals.refused_entry(flows.to_delete(vip_flow(2))) == \
        "flow-mod (command 4) of classify/100 eth_type=2048,ipv4_dst=10.0.0.100"
    assert refusals.refused_entry(groups.to_delete(GID)) == f"group-mod (command 2) of group {GID:#x}"


def test_the_fake_switch_refuses_a_dscp_remark_band_with_the_error_ovs_sends():
    bad = parser.OFPMeterMod(None, ofp.OFPMC_ADD, ofp.OFPMF_KBPS, MID,
                             [parser.OFPMeterBandDscpRemark(rate=100, prec_level=1)])
    bad.xid = 31
    with pytest.raises(Refused) as refused:
        FakeOFTable().apply(bad)
    error = error_reply(bad, refused.value)
    assert (error.xid, refusals.error_name(error)) == (31, "OFPET_METER_MOD_FAILED/OFPMMFC_BAD_BAND")
    assert bytes(error.data) == encode(bad)


def test_the_refusal_counter_is_exported_before_any_refusal(net):
    assert errors_exported(net.core)["openflow_refusals"] == 0


def test_a_refused_packet_in_meter_leaves_packet_ins_unmetered_not_missing():
    metered = triangle(fast_failover=False)             # packet-ins through the pipeline's meter
    metered.REFUSE_WITH_ERRORS = True
    metered.disconnect(1)
    metered.switches[1].apply(meters.to_delete(ofp.OFPM_ALL))   # gone, with the flows that used it
    metered.switches[1].max_meters = 0                  # and no room for it any more
    metered.connect(1)
    assert metered.core.switches[1].no_meters
    assert metered.switches[1].meters == {}
    assert [s for s in metered.switches[1].specs() if s.actions == (("controller",),)]   # still there
    assert metered.out_of_sync() == {}
    metered.announce("h1", "h2")
    metered.send("h1", ipv4_frame(metered.host("h1"), metered.host("h2")))     # a first packet, via s1's miss
    assert metered.trace("h1", "h2") == [1, 2]
