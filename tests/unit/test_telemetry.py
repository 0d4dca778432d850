"""controller.telemetry: counters read every poll become what they counted since the
reading before and Mbit/s; a counter that starts again from zero is all new, with
no rate."""

from __future__ import annotations

import pytest

from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.telemetry import CounterDeltas, MeterRate, MeterRates, PortRates, PortSample


def test_growth_and_rate_since_the_reading_before():
    deltas = CounterDeltas()
    first = deltas.read(("s1", 7), 10.0, (1000, 0))
    assert first.grown == (1000, 0) and first.seconds is None and first.mbps() is None
    second = deltas.read(("s1", 7), 12.0, (2_501_000, 10))
    assert second.grown == (2_500_000, 10)
    assert second.mbps(0) == pytest.approx(10.0)


def test_a_counter_that_starts_again_is_all_new_and_gives_no_rate():
    deltas = CounterDeltas()
    deltas.read("m", 10.0, (5000, 400))
    reset = deltas.read("m", 12.0, (30, 400))           # one of the two went back
    assert reset.grown == (30, 400) and reset.mbps() is None
    assert deltas.read("m", 14.0, (130, 400)).grown == (100, 0)


def test_a_reading_at_the_same_time_grows_without_a_rate():
    deltas = CounterDeltas()
    deltas.read("m", 10.0, (100,))
    same = deltas.read("m", 10.0, (150,))
    assert same.grown == (50,) and same.mbps() is None


def test_port_rates_per_port_and_forgotten_with_the_switch():
    rates = PortRates()
    assert rates.update(1, {1: PortSample(0.0, 0, 0)}) == {}
    assert rates.update(1, {1: PortSample(2.0, 2_500_000, 250_000)}) == {1: pytest.approx((10.0, 1.0))}
    rates.forget(1)
    assert rates.update(1, {1: PortSample(4.0, 5_000_000, 500_000)}) == {}     # a first reading again


def _meter(meter_id: int, byte_in: int, dropped: int = 0) -> parser.OFPMeterStats:
    return parser.OFPMeterStats(meter_id=meter_id, flow_count=1, packet_in_count=0, byte_in_count=byte_in,
                                duration_sec=0, duration_nsec=0,
                                band_stats=[parser.OFPMeterBandStats(0, dropped)])


def test_meter_rates_group_meters_sum_switches_and_forget_a_group():
    """The one meter-counter reader of QoS classes, slice directions and stitch ends."""
    rates = MeterRates(stale_s=5.0)
    group_of = {1: ("web", "in"), 2: ("web", "out")}.get
    for dp_id in (1, 2):
        rates.update(dp_id, [_meter(1, 0), _meter(2, 0), _meter(9, 0)], 10.0, group_of)
    first = rates.rates(10.0)
    assert set(first) == {("web", "in"), ("web", "out")} and not first[("web", "in")].measured
    rates.update(1, [_meter(1, 1_250_000, 250_000)], 12.0, group_of)
    rates.update(2, [_meter(1, 2_500_000)], 12.0, group_of)
    web_in = rates.rates(12.0)[("web", "in")]
    assert ((web_in.offered_mbps, web_in.dropped_mbps, web_in.delivered_mbps)
            == pytest.approx((15.0, 1.0, 14.0)))
    assert (web_in.offered_bytes, web_in.dropped_bytes, web_in.measured) == (3_750_000, 250_000, True)
    assert rates.rates(17.5)[("web", "in")].offered_mbps == 0.0           # both switches stale
    rates.forget(lambda group: group[0] == "web")
    assert rates.rates(12.0) == {}
    assert MeterRate().delivered_mbps == 0.0


def test_a_modified_meter_keeps_its_last_rate_until_its_next_reading():
    rates = MeterRates(stale_s=5.0)
    group_of = {1: "web"}.get
    rates.update(1, [_meter(1, 0)], 10.0, group_of)
    rates.update(1, [_meter(1, 2_500_000)], 12.0, group_of)
    rates.update(1, [_meter(1, 1000)], 13.0, group_of)           # modified: its counters start again
    after = rates.rates(13.0)["web"]
    assert after.offered_mbps == pytest.approx(10.0) and after.measured
    assert after.offered_bytes == 2_501_000                        # the bytes since the reset still count
    rates.update(1, [_meter(1, 1_251_000)], 14.0, group_of)
    assert rates.rates(14.0)["web"].offered_mbps == pytest.approx(10.0)
