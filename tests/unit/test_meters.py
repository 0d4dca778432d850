"""Tests for controller.meters: specs are checked, builders encode (bit and packet
rates), a meter survives the trip to a switch and back through a meter dump, and the
fake switch treats meters the way Open vSwitch does (drop bands only, flows need
their meter)."""

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import cookies, flows, meters
from controller.flows import flow
from controller.meters import ForeignMeter, MeterError, MeterSpec

from tests.lib.fakeoftable import FakeOFTable, FakeSwitchError, encode, wire_metermod

MID = cookies.meter_id("slices", 1)


@pytest.mark.parametrize("spec, flags", [
    (MeterSpec(MID, 2000, 200), ofp.OFPMF_KBPS | ofp.OFPMF_BURST),
    (MeterSpec(MID, 2000), ofp.OFPMF_KBPS),
])
def test_meter_mods_encode_one_drop_band_in_kbps(spec, flags):
    for build, command in ((meters.to_add, ofp.OFPMC_ADD), (meters.to_modify, ofp.OFPMC_MODIFY)):
        wire = wire_metermod(build(spec))
        assert (wire.command, wire.flags, wire.meter_id) == (command, flags, MID)
        (band,) = wire.bands
        assert isinstance(band, parser.OFPMeterBandDrop)
        assert (band.rate, band.burst_size) == (spec.rate_kbps, spec.burst_kb)


@pytest.mark.parametrize("spec, flags", [
    (MeterSpec(MID, rate_pps=1000, burst_pkts=100), ofp.OFPMF_PKTPS | ofp.OFPMF_BURST),
    (MeterSpec(MID, rate_pps=1000), ofp.OFPMF_PKTPS),
])
def test_packet_meters_encode_one_drop_band_in_packets_per_second(spec, flags):
    wire = wire_metermod(meters.to_add(spec))
    assert (wire.flags, wire.meter_id) == (flags, MID)
    (band,) = wire.bands
    assert isinstance(band, parser.OFPMeterBandDrop)
    assert (band.rate, band.burst_size) == (spec.rate_pps, spec.burst_pkts)
    assert spec.counts_packets and "packets/s" in spec.describe()


def test_delete_and_dump_request_encode():
    wire = wire_metermod(meters.to_delete(MID))
    assert (wire.command, wire.meter_id, wire.bands) == (ofp.OFPMC_DELETE, MID, [])
    _, msg_type, length, _ = ofproto_parser.header(encode(meters.config_request()))
    assert msg_type == ofp.OFPT_MULTIPART_REQUEST and length == 24


@pytest.mark.parametrize("spec", [MeterSpec(MID, 2000, 200), MeterSpec(MID, 1), MeterSpec(1, 10**6, 5),
                                  MeterSpec(MID, rate_pps=1000, burst_pkts=1000), MeterSpec(MID, rate_pps=1)])
def test_meter_round_trip_through_a_dump(spec):
    switch = FakeOFTable()
    switch.apply(meters.to_add(spec))
    (stats,) = switch.dump_meters()
    assert meters.from_stats(stats) == spec


def test_stats_flag_does_not_make_a_meter_foreign():
    stats = parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS | ofp.OFPMF_STATS, meter_id=MID,
                                       bands=[parser.OFPMeterBandDrop(rate=10, burst_size=0)])
    assert meters.from_stats(stats) == MeterSpec(MID, 10)


@pytest.mark.parametrize("args, message", [
    ((0, 100), "meter id"), ((ofp.OFPM_MAX + 1, 100), "meter id"), ((MID, 0), "rate_kbps"),
    ((MID, 2.5), "rate_kbps"), ((MID, 100, -1), "burst_kb"), ((MID, True), "rate_kbps"),
])
def test_meters_no_switch_would_take_are_refused(args, message):
    with pytest.raises(MeterError, match=message):
        MeterSpec(*args)


@pytest.mark.parametrize("stats, reason", [
    (parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS | ofp.OFPMF_PKTPS, meter_id=MID,
                                bands=[parser.OFPMeterBandDrop(rate=10)]), "flags"),
    (parser.OFPMeterConfigStats(flags=0, meter_id=MID, bands=[parser.OFPMeterBandDrop(rate=10)]), "flags"),
    (parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS, meter_id=MID,
                                bands=[parser.OFPMeterBandDscpRemark(rate=10, prec_level=1)]), "bands"),
    (parser.OFPMeterConfigStats(flags=ofp.OFPMF_KBPS, meter_id=MID,
                                bands=[parser.OFPMeterBandDrop(rate=10), parser.OFPMeterBandDrop(rate=20)]),
     "bands"),
])
def test_from_stats_refuses_meters_we_never_make(stats, reason):
    with pytest.raises(ForeignMeter, match=reason):
        meters.from_stats(stats)


@pytest.mark.parametrize("kwargs, message", [
    ({"rate_pps": -1}, "rate_pps"), ({"rate_pps": 1.5}, "rate_pps"), ({"burst_pkts": 10}, "rate_pps"),
    ({"rate_pps": 10, "burst_pkts": -1}, "burst_pkts"),
    ({"rate_kbps": 10, "rate_pps": 10}, "either bits or packets"),
    ({"burst_kb": 10, "rate_pps": 10}, "either bits or packets"),
])
def test_packet_meters_no_switch_would_take_are_refused(kwargs, message):
    with pytest.raises(MeterError, match=message):
        MeterSpec(MID, **kwargs)


# ---- what meters do on a switch --------------------------------------------------------------

METERED = flow("ingress", 10, {"eth_dst": "02:00:00:00:00:02"}, [("output", 2)], meter=MID)


def test_flow_using_a_missing_meter_is_refused_like_ovs_does():
    switch = FakeOFTable()
    with pytest.raises(FakeSwitchError, match="OFPMMFC_INVALID_METER"):
        switch.apply(flows.to_flowmod(METERED))


def test_metered_flow_records_its_meter_and_modify_changes_the_rate_in_place():
    switch = FakeOFTable()
    switch.apply(meters.to_add(MeterSpec(MID, 2000, 200)))
    switch.apply(flows.to_flowmod(METERED))
    (egress,) = switch.process({"in_port": 1, "eth_dst": "02:00:00:00:00:02"})
    assert (egress.port, egress.meters) == (2, (MID,))
    switch.apply(meters.to_modify(MeterSpec(MID, 5000, 500)))
    assert switch.meter_rate_kbps(MID) == 5000
    assert switch.specs() == {METERED}


def test_deleting_a_meter_deletes_the_flows_that_use_it():
    switch = FakeOFTable()
    switch.apply(meters.to_add(MeterSpec(MID, 2000)))
    switch.apply(flows.to_flowmod(METERED))
    switch.apply(meters.to_delete(MID))
    assert switch.meters == {} and len(switch) == 0


def test_switch_refuses_dscp_remark_bands_and_duplicate_or_unknown_meters():
    switch = FakeOFTable()
    remark = parser.OFPMeterMod(datapath=None, command=ofp.OFPMC_ADD, flags=ofp.OFPMF_KBPS, meter_id=MID,
                                bands=[parser.OFPMeterBandDscpRemark(rate=10, prec_level=1)])
    with pytest.raises(FakeSwitchError, match="BAD_BAND"):
        switch.apply(remark)
    with pytest.raises(FakeSwitchError, match="UNKNOWN_METER"):
        switch.apply(meters.to_modify(MeterSpec(MID, 10)))
    switch.apply(meters.to_add(MeterSpec(MID, 10)))
    with pytest.raises(FakeSwitchError, match="METER_EXISTS"):
        switch.apply(meters.to_add(MeterSpec(MID, 10)))
