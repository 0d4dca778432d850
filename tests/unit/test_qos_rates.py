"""Meter counters into per-class rates: deltas over time, sums over switches, totals
that survive a re-created meter, and switches that stopped reporting."""

from __future__ import annotations

import pytest
from os_ken.ofproto import ofproto_v1_3_parser as parser

from apps.qos.rates import ClassRates, MeterCounters

EF, BE = 0x07000001, 0x07000000


def stat(meter_id: int, byte_in: int, dropped: int = 0) -> parser.OFPMeterStats:
    return parser.OFPMeterStats(meter_id=meter_id, flow_count=1, packet_in_count=0, byte_in_count=byte_in,
                                duration_sec=0, duration_nsec=0,
                                band_stats=[parser.OFPMeterBandStats(0, dropped)])


@pytest.fixture
def counters() -> MeterCounters:
    return MeterCounters({EF: "ef", BE: "best-effort"}, stale_s=6.0)


def test_every_class_is_reported_from_the_start(counters):
    assert counters.rates(0.0) == {"ef": ClassRates(), "best-effort": ClassRates()}


def test_the_first_report_gives_totals_and_the_second_rates(counters):
    first = counters.update(1, [stat(BE, 1000, 400)], 10.0)
    assert first["best-effort"] == ClassRates(0.0, 0.0, 1000, 400, 10.0)
    second = counters.update(1, [stat(BE, 2_501_000, 1_000_400)], 12.0)["best-effort"]
    got = (second.offered_mbps, second.dropped_mbps, second.delivered_mbps)
    assert got == pytest.approx((10.0, 4.0, 6.0))
    assert (second.offered_bytes, second.dropped_bytes) == (2_501_000, 1_000_400)


def test_switches_add_up_and_other_meters_are_ignored(counters):
    for dp_id in (1, 2):
        counters.update(dp_id, [stat(EF, 0), stat(0x04000000, 0)], 10.0)
    counters.update(1, [stat(EF, 1_250_000)], 12.0)
    rates = counters.update(2, [stat(EF, 2_500_000), stat(0x04000000, 9_999_999)], 12.0)
    assert rates["ef"].offered_mbps == pytest.approx(15.0)
    assert rates["ef"].offered_bytes == 3_750_000
    assert set(rates) == {"ef", "best-effort"}


def test_a_re_created_meter_keeps_the_totals_growing(counters):
    counters.update(1, [stat(BE, 5000, 100)], 10.0)
    rates = counters.update(1, [stat(BE, 300, 0)], 12.0)["best-effort"]   # counters back from zero
    assert (rates.offered_bytes, rates.dropped_bytes) == (5300, 100)
    assert rates.offered_mbps == 0.0          # no rate across a reset


def test_a_switch_that_stopped_reporting_no_longer_adds_to_the_rates(counters):
    counters.update(1, [stat(EF, 0)], 10.0)
    counters.update(1, [stat(EF, 1_250_000)], 12.0)
    counters.update(2, [stat(EF, 0)], 12.0)
    assert counters.rates(18.0)["ef"].offered_mbps == pytest.approx(5.0)
    assert counters.rates(18.1)["ef"].offered_mbps == 0.0
    assert counters.rates(18.1)["ef"].offered_bytes == 1_250_000
