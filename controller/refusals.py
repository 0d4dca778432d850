"""Refused OpenFlow messages: which flow-, group- or meter-mod an error answers, and what to do.

A switch answers a message it cannot carry out with an OpenFlow error whose xid is
the refused message's (and whose data echoes its bytes), before it answers the
barrier that follows. ``InFlight`` remembers, per switch, the mods sent and not yet
confirmed — by xid, with the generation of the ``SyncBarrier`` that closes them —
and forgets them once that barrier's reply arrives or the switch disconnects (and,
past ``MAX_IN_FLIGHT`` per switch, the oldest first). ``error_received`` is the one
handler of an error (the shell's, and the unit tests' fake network's): a refused
dump goes to ``core.dump_failed``, a refused mod to ``core.refused`` with the
flow, group or meter it carried (read back from the message, so it compares equal
to the desired entry) and the error's name (``OFPET_BAD_ACTION/OFPBAC_BAD_OUT_PORT``);
an error for anything else is counted and logged.

Errors that say the switch holds something else than the controller believed — the
group or meter exists already, is missing, or a flow refers to one that is missing
(``OUT_OF_SYNC``) — are answered by its dump alone: the entry goes again once; only a
second refusal leaves it out (``core.refused(..., retry=True)``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import bundles, desired, flows, groups, meters
from controller.bundles import BundleAdd, BundleCheck, BundleControl, BundleDiscard
from controller.core import ControllerCore, Out, SyncBarrier
from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec
from controller.pipeline import PIPELINE

LOG = logging.getLogger(__name__)

# Mods remembered per switch: a reconciliation of a large switch sends thousands in one
# sync, and they are forgotten within milliseconds of its barrier reply; a switch that
# stops answering barriers must not make the controller grow without end.
MAX_IN_FLIGHT = 50_000
MODS = (parser.OFPFlowMod, parser.OFPGroupMod, parser.OFPMeterMod, BundleAdd)

# Each error type's code names start with this (OpenFlow 1.3 section 7.4.4).
_CODE_PREFIXES = {
    ofp.OFPET_HELLO_FAILED: "OFPHFC_", ofp.OFPET_BAD_REQUEST: "OFPBRC_", ofp.OFPET_BAD_ACTION: "OFPBAC_",
    ofp.OFPET_BAD_INSTRUCTION: "OFPBIC_", ofp.OFPET_BAD_MATCH: "OFPBMC_",
    ofp.OFPET_FLOW_MOD_FAILED: "OFPFMFC_", ofp.OFPET_GROUP_MOD_FAILED: "OFPGMFC_",
    ofp.OFPET_PORT_MOD_FAILED: "OFPPMFC_", ofp.OFPET_TABLE_MOD_FAILED: "OFPTMFC_",
    ofp.OFPET_QUEUE_OP_FAILED: "OFPQOFC_", ofp.OFPET_SWITCH_CONFIG_FAILED: "OFPSCFC_",
    ofp.OFPET_ROLE_REQUEST_FAILED: "OFPRRFC_", ofp.OFPET_METER_MOD_FAILED: "OFPMMFC_",
    ofp.OFPET_TABLE_FEATURES_FAILED: "OFPTFFC_",
}
_TYPE_NAMES = {value: name for name, value in vars(ofp).items() if name.startswith("OFPET_")}
_CODE_NAMES = {(type_, value): name for type_, prefix in _CODE_PREFIXES.items()
               for name, value in vars(ofp).items() if name.startswith(prefix)}
_MESSAGE_NAMES = {value: name for name, value in vars(ofp).items()
                  if name.startswith("OFPT_") and isinstance(value, int)}

OUT_OF_SYNC = frozenset({
    (ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS),
    (ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP),
    (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_METER_EXISTS),
    (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_UNKNOWN_METER),
    (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_INVALID_METER),    # what OVS says of a flow's missing meter
    (ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP),
})


def error_name(msg) -> str:
    """An OFPErrorMsg's type and code as OpenFlow names them: ``OFPET_METER_MOD_FAILED/OFPMMFC_BAD_BAND``,
    ``OFPET_EXPERIMENTER/ONFERR_ET_FAILED`` (a bundle's)."""
    if bundles.is_bundle_error(msg):
        return bundles.error_name(msg)
    if msg.type == ofp.OFPET_EXPERIMENTER:
        return f"OFPET_EXPERIMENTER/exp_type {msg.exp_type} of experimenter {msg.experimenter:#x}"
    type_name = _TYPE_NAMES.get(msg.type, f"type {msg.type}")
    return f"{type_name}/{_CODE_NAMES.get((msg.type, msg.code), f'code {msg.code}')}"


def message_name(data: bytes) -> str:
    """The type of the message an error echoes (``OFPT_PACKET_OUT``), from its header."""
    if len(data) < 2:
        return "an unknown message"
    return _MESSAGE_NAMES.get(data[1], f"message type {data[1]}")


def refused_entry(msg) -> FlowSpec | GroupSpec | MeterSpec | str:
    """What a mod carried: the flow, group or meter an add or modify installs (read back
    as the dump of a switch would be, so it compares equal to the desired entry), or a
    description of anything else (a deletion, or an entry we could not read). A
    message added to a bundle is read as the mod it carries."""
    if isinstance(msg, BundleAdd):
        msg = msg.message
    try:
        if isinstance(msg, parser.OFPFlowMod) and msg.command in (ofp.OFPFC_ADD, ofp.OFPFC_MODIFY_STRICT):
            return flows.from_stats(msg)
        if isinstance(msg, parser.OFPGroupMod) and msg.command in (ofp.OFPGC_ADD, ofp.OFPGC_MODIFY):
            return groups.from_stats(msg)
        if isinstance(msg, parser.OFPMeterMod) and msg.command in (ofp.OFPMC_ADD, ofp.OFPMC_MODIFY):
            return meters.from_stats(msg)
    except (flows.ForeignFlow, groups.ForeignGroup, meters.ForeignMeter):
        pass
    if isinstance(msg, parser.OFPFlowMod):
        table = PIPELINE.table_by_id(msg.table_id)
        match = ",".join(f"{k}={v}" for k, v in msg.match.items()) or "*"
        return (f"flow-mod (command {msg.command}) of {table.name if table else f'table {msg.table_id}'}/"
                f"{msg.priority} {match}")
    if isinstance(msg, parser.OFPGroupMod):
        return f"group-mod (command {msg.command}) of group {msg.group_id:#x}"
    return f"meter-mod (command {msg.command}) of meter {msg.meter_id:#x}"


@dataclass
class _Batch:
    """The mods of one sync to one switch; ``generation`` is its SyncBarrier's (None until sent)."""
    generation: int | None = None
    xids: deque = field(default_factory=deque)


@dataclass
class _Switch:
    mods: dict = field(default_factory=dict)            # xid -> (message, its _Batch)
    batches: deque = field(default_factory=deque)       # oldest first; the last may be open
    barriers: dict = field(default_factory=dict)        # SyncBarrier xid -> generation
    checks: dict = field(default_factory=dict)          # BundleCheck xid -> generation
    controls: dict = field(default_factory=dict)        # bundle control xid -> the message
    poisoned: set = field(default_factory=set)          # bundles (generations) with an add refused


@dataclass(frozen=True)
class Sent:
    """A mod a switch refused: the message and the generation of the sync it was part of
    (None if that sync's SyncBarrier was never sent)."""
    msg: object
    generation: int | None


class InFlight:
    """Per switch, the flow-, group- and meter-mods sent and not yet confirmed, by xid.

    The shell reports every message it sent (``sent``: after ``send_msg`` gave it its
    xid); a mod belongs to the generation of the next SyncBarrier to that switch.
    Not thread-safe: the shell calls it under the core's lock, as it sends."""

    def __init__(self, limit: int = MAX_IN_FLIGHT):
        self.limit = limit
        self._switches: dict[int, _Switch] = {}
        self.dropped = 0            # mods forgotten before their barrier reply (over the limit)

    def sent(self, dp_id: int, msg) -> None:
        if isinstance(msg, (SyncBarrier, BundleCheck)):
            switch = self._switches.setdefault(dp_id, _Switch())
            (switch.barriers if isinstance(msg, SyncBarrier) else switch.checks)[msg.xid] = msg.generation
            if switch.batches and switch.batches[-1].generation is None:
                switch.batches[-1].generation = msg.generation
        elif isinstance(msg, BundleControl):
            self._switches.setdefault(dp_id, _Switch()).controls[msg.xid] = msg
        elif isinstance(msg, MODS):
            switch = self._switches.setdefault(dp_id, _Switch())
            if not switch.batches or switch.batches[-1].generation is not None:
                switch.batches.append(_Batch())
            batch = switch.batches[-1]
            batch.xids.append(msg.xid)
            switch.mods[msg.xid] = (msg, batch)
            if len(switch.mods) > self.limit:
                self._drop_oldest(switch)

    def _drop_oldest(self, switch: _Switch) -> None:
        oldest = switch.batches[0]
        switch.mods.pop(oldest.xids.popleft(), None)
        if not oldest.xids and len(switch.batches) > 1:
            switch.batches.popleft()
        self.dropped += 1

    def barrier_replied(self, dp_id: int, xid: int) -> int | None:
        """The generation a barrier reply confirms (None: not a SyncBarrier's, e.g. one
        between the phases of a sync); the mods of that generation and earlier are forgotten
        (their errors, had there been any, came before this reply)."""
        switch = self._switches.get(dp_id)
        generation = switch.barriers.pop(xid, None) if switch is not None else None
        if generation is None:
            return None
        while switch.batches and switch.batches[0].generation is not None \
                and switch.batches[0].generation <= generation:
            for sent_xid in switch.batches.popleft().xids:
                switch.mods.pop(sent_xid, None)
        for old in [x for x, g in switch.barriers.items() if g <= generation]:
            del switch.barriers[old]        # answered in order: theirs cannot come any more
        for old in [x for x, m in switch.controls.items() if m.generation <= generation]:
            del switch.controls[old]
        switch.poisoned = {g for g in switch.poisoned if g > generation}
        return generation

    def bundle_checked(self, dp_id: int, xid: int) -> tuple[int, bool] | None:
        """(generation, whether the switch refused a message added to that bundle) for the
        reply to a ``BundleCheck``; None for any other barrier reply."""
        switch = self._switches.get(dp_id)
        generation = switch.checks.pop(xid, None) if switch is not None else None
        if generation is None:
            return None
        return generation, generation in switch.poisoned

    def bundle_control(self, dp_id: int, xid: int) -> tuple[BundleControl, bool] | None:
        """The bundle control message (open, commit, discard) an error with ``xid``
        answers, and whether a message added to its bundle was refused first."""
        switch = self._switches.get(dp_id)
        msg = switch.controls.pop(xid, None) if switch is not None else None
        if msg is None:
            return None
        return msg, msg.generation in switch.poisoned

    def refused(self, dp_id: int, xid: int) -> Sent | None:
        """The mod an error with ``xid`` refused, if it is one of ours in flight."""
        switch = self._switches.get(dp_id)
        held = switch.mods.pop(xid, None) if switch is not None else None
        if held is None:
            return None
        msg, batch = held
        if isinstance(msg, BundleAdd):
            switch.poisoned.add(msg.generation)     # its check discards it, its commit fails
        return Sent(msg, batch.generation)

    def forget(self, dp_id: int) -> None:
        """The switch disconnected (or connected anew): its xids may come again."""
        self._switches.pop(dp_id, None)

    def __len__(self) -> int:
        return sum(len(switch.mods) for switch in self._switches.values())


def error_received(core: ControllerCore, in_flight: InFlight | None, dp_id: int, msg, now: float) -> Out:
    """An OpenFlow error (a parsed ``OFPErrorMsg``) from switch ``dp_id``; ``in_flight``
    None: it came over a connection the controller no longer uses. Returns what to send.
    Call with the core's lock held (as the shell sends)."""
    core.counters["openflow_errors"] += 1
    name = error_name(msg)
    data = bytes(msg.data or b"")
    if in_flight is None:
        LOG.error("dp %016x (over a connection not in use): OpenFlow error %s for %s", dp_id, name,
                  message_name(data))
        return []
    kind = desired.failed_dump_kind(data)
    if kind:
        return core.dump_failed(dp_id, kind, now)
    control = in_flight.bundle_control(dp_id, msg.xid)
    if control is not None:
        bundle, explained = control
        if isinstance(bundle, BundleDiscard):       # e.g. its open had failed: nothing to discard
            LOG.info("%s: discarding bundle %#x: %s", core.switch_label(dp_id), bundle.generation, name)
            return []
        return core.bundle_refused(dp_id, bundle.generation, name, explained, now)
    sent = in_flight.refused(dp_id, msg.xid)
    if isinstance(sent.msg if sent else None, BundleAdd) and (
            bundles.is_bundle_error(msg) or msg.type == ofp.OFPET_BAD_REQUEST):
        # About the bundle (unknown, not bundlable, the switch has none), not the entry.
        return core.bundle_refused(dp_id, sent.msg.generation, name, False, now)
    if sent is None:
        LOG.error("%s: OpenFlow error %s for %s (xid %d), not a flow-, group- or meter-mod in flight: %s",
                  core.switch_label(dp_id), name, message_name(data), msg.xid, data[:64].hex())
        return []
    return core.refused(dp_id, sent.generation, refused_entry(sent.msg), name, now,
                        retry=(msg.type, msg.code) in OUT_OF_SYNC)
