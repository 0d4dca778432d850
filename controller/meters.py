"""OpenFlow 1.3 meters as data: one drop band, in kbit/s, with an optional burst.

A ``MeterSpec`` is a rate limit a manager wants on a switch: its id (from the
owner's range, see ``cookies.meter_id``), the rate in kbit/s and the burst in
kbit. Traffic above the rate is dropped — the only band the userspace datapath of
Open vSwitch implements (it refuses dscp_remark). Flags follow the spec: always
``OFPMF_KBPS``, plus ``OFPMF_BURST`` when a burst is given (OVS refuses the burst
flag with a zero burst). ``from_stats`` reads a meter-config dump back into a spec
that compares equal to the installed one; builders need no datapath.
"""

from __future__ import annotations

from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.pipeline import PipelineError

MAX_RATE_KBPS = 0xFFFFFFFF


class MeterError(PipelineError):
    """A meter spec that no switch would accept (bad id, rate or burst)."""


class ForeignMeter(Exception):
    """A dumped meter uses something our specs never produce (pktps, other bands)."""


@dataclass(frozen=True)
class MeterSpec:
    meter_id: int
    rate_kbps: int
    burst_kb: int = 0           # 0: no burst flag, the switch picks its own

    def __post_init__(self) -> None:
        if not isinstance(self.meter_id, int) or not 1 <= self.meter_id <= ofp.OFPM_MAX:
            raise MeterError(f"meter id {self.meter_id!r} out of range 1..{ofp.OFPM_MAX:#x}")
        if not isinstance(self.rate_kbps, int) or not 1 <= self.rate_kbps <= MAX_RATE_KBPS:
            raise MeterError(f"meter {self.meter_id:#x}: rate_kbps {self.rate_kbps!r} must be a "
                             f"positive integer")
        if not isinstance(self.burst_kb, int) or not 0 <= self.burst_kb <= MAX_RATE_KBPS:
            raise MeterError(f"meter {self.meter_id:#x}: burst_kb {self.burst_kb!r} must be an "
                             f"integer >= 0")

    @property
    def flags(self) -> int:
        return ofp.OFPMF_KBPS | (ofp.OFPMF_BURST if self.burst_kb else 0)

    def describe(self) -> str:
        return f"meter {self.meter_id:#x} drop above {self.rate_kbps} kbit/s burst {self.burst_kb} kbit"


def _metermod(spec: MeterSpec, command: int) -> parser.OFPMeterMod:
    return parser.OFPMeterMod(datapath=None, command=command, flags=spec.flags, meter_id=spec.meter_id,
                              bands=[parser.OFPMeterBandDrop(rate=spec.rate_kbps, burst_size=spec.burst_kb)])


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
    if flags not in (ofp.OFPMF_KBPS, ofp.OFPMF_KBPS | ofp.OFPMF_BURST):
        raise ForeignMeter(f"meter {stats.meter_id:#x}: flags {stats.flags:#x}")
    if len(stats.bands) != 1 or not isinstance(stats.bands[0], parser.OFPMeterBandDrop):
        raise ForeignMeter(f"meter {stats.meter_id:#x}: bands "
                           f"{[type(b).__name__ for b in stats.bands]}")
    band = stats.bands[0]
    burst = band.burst_size if flags & ofp.OFPMF_BURST else 0
    try:
        return MeterSpec(stats.meter_id, band.rate, burst)
    except MeterError as err:
        raise ForeignMeter(str(err)) from None


def config_request() -> parser.OFPMeterConfigStatsRequest:
    return parser.OFPMeterConfigStatsRequest(datapath=None, flags=0, meter_id=ofp.OFPM_ALL)


def stats_request() -> parser.OFPMeterStatsRequest:
    """Counters of every meter on the switch (bytes and packets in, per band)."""
    return parser.OFPMeterStatsRequest(datapath=None, flags=0, meter_id=ofp.OFPM_ALL)
