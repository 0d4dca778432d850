"""OpenFlow 1.3 meters as data: one drop band, in kbit/s or in packets/s, with an optional burst.

A ``MeterSpec`` is a rate limit a manager wants on a switch: its id (from the
owner's range, see ``cookies.meter_id``) and either a bit rate (``rate_kbps``,
burst ``burst_kb`` in kbit: slices and QoS limit bandwidth) or a packet rate
(``rate_pps``, burst ``burst_pkts`` in packets: the core limits packet-ins with
it), never both. Traffic above the rate is dropped — the only band the userspace
datapath of Open vSwitch implements (it refuses dscp_remark). Flags follow the
spec: ``OFPMF_KBPS`` or ``OFPMF_PKTPS``, plus ``OFPMF_BURST`` when a burst is given
(OVS refuses the burst flag with a zero burst). ``from_stats`` reads a meter-config
dump back into a spec that compares equal to the installed one; builders need no
datapath.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline import PipelineError

MAX_RATE_KBPS = 0xFFFFFFFF
MAX_RATE_PPS = 0xFFFFFFFF


class MeterError(PipelineError):
    """A meter spec that no switch would accept (bad id, rate or burst)."""


class ForeignMeter(Exception):
    """A dumped meter uses something our specs never produce (other flags or bands)."""


def _check_amount(meter_id: int, name: str, value, least: int, most: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= most:
        what = "a positive integer" if least else "an integer >= 0"
        raise MeterError(f"meter {meter_id:#x}: {name} {value!r} must be {what}")


MIN_BURST_KB = 64
COUNT_ONLY_KBPS = 100_000_000           # 100 Gbit/s: a meter that only counts


def rate_meter(meter_id: int, rate_kbps: int, burst_s: float) -> "MeterSpec":
    """A drop meter at ``rate_kbps`` whose bucket holds ``burst_s`` seconds of that
    rate (at least ``MIN_BURST_KB``)."""
    return MeterSpec(meter_id, rate_kbps, max(MIN_BURST_KB, math.ceil(rate_kbps * burst_s)))


@dataclass(frozen=True)
class MeterSpec:
    meter_id: int
    rate_kbps: int = 0
    burst_kb: int = 0           # 0: no burst flag, the switch picks its own
    rate_pps: int = 0           # a packet meter instead: rate_kbps and burst_kb stay 0
    burst_pkts: int = 0         # 0: no burst flag (Open vSwitch then takes one second's worth)

    def __post_init__(self) -> None:
        if not isinstance(self.meter_id, int) or not 1 <= self.meter_id <= ofp.OFPM_MAX:
            raise MeterError(f"meter id {self.meter_id!r} out of range 1..{ofp.OFPM_MAX:#x}")
        if self.rate_pps or self.burst_pkts:
            if self.rate_kbps or self.burst_kb:
                raise MeterError(f"meter {self.meter_id:#x}: rate_kbps/burst_kb and rate_pps/burst_pkts "
                                 f"both given; a meter counts either bits or packets")
            _check_amount(self.meter_id, "rate_pps", self.rate_pps, 1, MAX_RATE_PPS)
            _check_amount(self.meter_id, "burst_pkts", self.burst_pkts, 0, MAX_RATE_PPS)
        else:
            _check_amount(self.meter_id, "rate_kbps", self.rate_kbps, 1, MAX_RATE_KBPS)
            _check_amount(self.meter_id, "burst_kb", self.burst_kb, 0, MAX_RATE_KBPS)

    @property
    def counts_packets(self) -> bool:
        return self.rate_pps > 0

    @property
    def flags(self) -> int:
        unit = ofp.OFPMF_PKTPS if self.counts_packets else ofp.OFPMF_KBPS
        return unit | (ofp.OFPMF_BURST if self.band_burst else 0)

    @property
    def band_rate(self) -> int:
        """The band's rate in the meter's own unit (kbit/s or packets/s)."""
        return self.rate_pps or self.rate_kbps

    @property
    def band_burst(self) -> int:
        """The band's burst in the meter's own unit (kbit or packets); 0: none."""
        return self.burst_pkts if self.counts_packets else self.burst_kb

    def describe(self) -> str:
        if self.counts_packets:
            return (f"meter {self.meter_id:#x} drop above {self.rate_pps} packets/s "
                    f"burst {self.burst_pkts} packets")
        return f"meter {self.meter_id:#x} drop above {self.rate_kbps} kbit/s burst {self.burst_kb} kbit"


def _metermod(spec: MeterSpec, command: int) -> parser.OFPMeterMod:
    band = parser.OFPMeterBandDrop(rate=spec.band_rate, burst_size=spec.band_burst)
    return parser.OFPMeterMod(datapath=None, command=command, flags=spec.flags, meter_id=spec.meter_id,
                              bands=[band])


def to_add(spec: MeterSpec) -> parser.OFPMeterMod:
    return _metermod(spec, ofp.OFPMC_ADD)


def to_modify(spec: MeterSpec) -> parser.OFPMeterMod:
    """Change the rate in place: flows that use the meter keep it."""
    return _metermod(spec, ofp.OFPMC_MODIFY)


def to_delete(meter_id: int) -> parser.OFPMeterMod:
    """Delete a meter (a switch also deletes the flows that use it)."""
    return parser.OFPMeterMod(datapath=None, command=ofp.OFPMC_DELETE, flags=0, meter_id=meter_id,
                              bands=[])


def from_stats(stats: parser.OFPMeterConfigStats) -> MeterSpec:
    """Read a dumped meter into a MeterSpec; raise ForeignMeter if it can't be ours."""
    flags = stats.flags & ~ofp.OFPMF_STATS      # counting or not, the limit is the same
    unit = flags & ~ofp.OFPMF_BURST
    if unit not in (ofp.OFPMF_KBPS, ofp.OFPMF_PKTPS):
        raise ForeignMeter(f"meter {stats.meter_id:#x}: flags {stats.flags:#x}")
    if len(stats.bands) != 1 or not isinstance(stats.bands[0], parser.OFPMeterBandDrop):
        raise ForeignMeter(f"meter {stats.meter_id:#x}: bands "
                           f"{[type(b).__name__ for b in stats.bands]}")
    band = stats.bands[0]
    burst = band.burst_size if flags & ofp.OFPMF_BURST else 0
    try:
        if unit == ofp.OFPMF_PKTPS:
            return MeterSpec(stats.meter_id, rate_pps=band.rate, burst_pkts=burst)
        return MeterSpec(stats.meter_id, band.rate, burst)
    except MeterError as err:
        raise ForeignMeter(str(err)) from None


def config_request() -> parser.OFPMeterConfigStatsRequest:
    return parser.OFPMeterConfigStatsRequest(datapath=None, flags=0, meter_id=ofp.OFPM_ALL)


def stats_request() -> parser.OFPMeterStatsRequest:
    """Counters of every meter on the switch (bytes and packets in, per band)."""
    return parser.OFPMeterStatsRequest(datapath=None, flags=0, meter_id=ofp.OFPM_ALL)
