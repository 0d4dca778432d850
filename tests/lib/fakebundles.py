"""OpenFlow bundles (ONF EXT-230) on the fake switches, the way Open vSwitch 3.1 runs them.

``FakeBundles`` holds the open bundles of one ``FakeNetwork``, per switch, and takes
the bundle messages the core sends (``controller.bundles``):

- open: a new bundle (one with that id open already: ``ONFERR_ET_BUNDLE_EXIST``);
- add: flow- and group-mods only (anything else: ``ONFERR_ET_MSG_UNSUP``). A message is
  tried on the switch's tables as the bundle so far would leave them: what OVS finds
  when it decodes a message (an output beyond its ports, a prerequisite missing, a
  bad group) answers the add at once and the message is left out of the bundle,
  which stays open; what it finds only when it applies a message (a group or meter
  missing, a group that exists or does not) stays in, to fail the commit;
- commit: every message applied in order to a copy of the switch's tables, which
  replaces them only if all went in; else the failing message's add is answered with
  its error, then the commit with ``ONFERR_ET_FAILED``, and the switch is untouched;
- discard: the bundle is dropped; an unknown id answers ``ONFERR_ET_BAD_ID``.

``supported`` False: a switch without the extension answers every bundle message with
``OFPET_BAD_REQUEST/OFPBRC_BAD_EXPERIMENTER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.bundles import BUNDLABLE
from tests.lib.fakeswitch import FakeOFTable, Refused, encode

# Refusals Open vSwitch makes only when it applies a message (the rest when it decodes it).
AT_COMMIT = frozenset({
    (ofp.OFPET_BAD_ACTION, ofp.OFPBAC_BAD_OUT_GROUP),
    (ofp.OFPET_METER_MOD_FAILED, ofp.OFPMMFC_INVALID_METER),
    (ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_GROUP_EXISTS),
    (ofp.OFPET_GROUP_MOD_FAILED, ofp.OFPGMFC_UNKNOWN_GROUP),
})


def onf_error(text: str, exp_type: int) -> Refused:
    """A refusal answered with an ONF experimenter error (``Refused.code`` holds its exp_type)."""
    return Refused(text, ofp.OFPET_EXPERIMENTER, exp_type)


@dataclass
class _Bundle:
    adds: list = field(default_factory=list)        # the ONFBundleAddMsgs kept, in order
    shadow: FakeOFTable | None = None                # the tables as the bundle so far leaves them


class FakeBundles:
    def __init__(self, switches: dict[int, FakeOFTable], refuse):
        self.switches = switches
        self.refuse = refuse                # (dp_id, msg, Refused): the switch answers msg with an error
        self.open: dict[tuple[int, int], _Bundle] = {}
        self.supported = True
        self.committed = 0
        self.discarded = 0

    def handle(self, dp_id: int, msg) -> None:
        encode(msg)
        if not self.supported:
            self.refuse(dp_id, msg, Refused(f"dp {dp_id}: no bundles (OFPBRC_BAD_EXPERIMENTER)",
                                            ofp.OFPET_BAD_REQUEST, ofp.OFPBRC_BAD_EXPERIMENTER))
            return
        key = (dp_id, msg.bundle_id)
        if isinstance(msg, parser.ONFBundleAddMsg):
            self._add(dp_id, key, msg)
        elif msg.type == ofp.ONF_BCT_OPEN_REQUEST:
            if key in self.open:
                self.refuse(dp_id, msg, onf_error(f"dp {dp_id}: bundle {msg.bundle_id} is open",
                                                  ofp.ONFERR_ET_BUNDLE_EXIST))
            else:
                self.open[key] = _Bundle(shadow=self.switches[dp_id].copy())
        elif key not in self.open:
            self.refuse(dp_id, msg, onf_error(f"dp {dp_id}: no bundle {msg.bundle_id}", ofp.ONFERR_ET_BAD_ID))
        elif msg.type == ofp.ONF_BCT_DISCARD_REQUEST:
            del self.open[key]
            self.discarded += 1
        elif msg.type == ofp.ONF_BCT_COMMIT_REQUEST:
            self._commit(dp_id, key, msg)
        else:
            raise AssertionError(f"bundle control type {msg.type} not modelled")

    def _add(self, dp_id: int, key, msg) -> None:
        bundle = self.open.get(key)
        if bundle is None:
            self.refuse(dp_id, msg, onf_error(f"dp {dp_id}: no bundle {msg.bundle_id}", ofp.ONFERR_ET_BAD_ID))
            return
        if not isinstance(msg.message, BUNDLABLE):
            self.refuse(dp_id, msg, onf_error(f"dp {dp_id}: {type(msg.message).__name__} in a bundle",
                                              ofp.ONFERR_ET_MSG_UNSUP))
            return
        try:
            bundle.shadow.apply(msg.message)
        except Refused as refused:
            if (refused.type, refused.code) not in AT_COMMIT:
                self.refuse(dp_id, msg, refused)        # left out; the bundle stays open
                return
        bundle.adds.append(msg)

    def _commit(self, dp_id: int, key, msg) -> None:
        bundle = self.open.pop(key)
        tables = self.switches[dp_id].copy()
        for add in bundle.adds:
            try:
                tables.apply(add.message)
            except Refused as refused:
                self.refuse(dp_id, add, refused)
                self.refuse(dp_id, msg, onf_error(f"dp {dp_id}: bundle {msg.bundle_id} failed",
                                                  ofp.ONFERR_ET_FAILED))
                return
        switch = self.switches[dp_id]
        switch.tables, switch.groups, switch.meters = tables.tables, tables.groups, tables.meters
        self.committed += 1
