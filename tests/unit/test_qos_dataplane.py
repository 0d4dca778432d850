"""The QoS rules of one switch, built without a switch: which flows and meters a
switch with given host ports holds, in which priority order, at which rates."""

from __future__ import annotations

import pytest

from apps.qos import dataplane
from apps.slices import dataplane as slices_dataplane
from controller import cookies, flows
from controller import meters as controller_meters
from apps.qos.config import QosConfig
from controller.desired import Desired
from controller.flows import ETH_TYPE_IP
from tests.lib.fakeswitch import encode

SETTINGS = QosConfig.model_validate({"classes": [
    {"name": "best-effort", "dscp": [0], "rank": 2, "rate_mbps": 6},
    {"name": "ef", "dscp": [46], "rank": 0},
    {"name": "af4", "dscp": [34, 36], "rank": 1, "rate_mbps": 20.5},
]})


def by_class(entries: Desired, classes) -> dict[str, list]:
    names = {c.cookie: c.name for c in classes}
    out: dict[str, list] = {}
    for spec in entries.flows:
        out.setdefault(names[spec.cookie], []).append(spec)
    return out


def test_classes_come_most_important_first_with_their_ids():
    classes = dataplane.classes_from(SETTINGS)
    assert [c.name for c in classes] == ["ef", "af4", "best-effort"]
    assert [c.rate_kbps for c in classes] == [None, 20500, 6000]
    # Ids follow the position in the config, in the qos owner's ranges.
    assert {c.name: c.index for c in classes} == {"best-effort": 0, "ef": 1, "af4": 2}
    assert all(cookies.id_owner(c.meter_id) == "qos" and cookies.owner_of(c.cookie) == "qos" for c in classes)


def test_priority_falls_with_rank_and_stays_below_the_slices_rules():
    classes = dataplane.classes_from(SETTINGS)
    entries = dataplane.switch_entries(classes, [3, 4], 0.1)
    prio = {name: {s.priority for s in specs} for name, specs in by_class(entries, classes).items()}
    assert prio == {"ef": {900}, "af4": {899}, "best-effort": {898}}
    lowest_slice_rule = min(slices_dataplane.PRIO_TRANSIT, slices_dataplane.PRIO_VIP,
                            slices_dataplane.PRIO_REPLY)
    assert all(s.priority < lowest_slice_rule for s in entries.flows)
    assert dataplane.PRIO_DEFAULT < dataplane.PRIO_TOP - 99


def test_one_flow_per_host_port_and_dscp_metered_by_its_class():
    classes = dataplane.classes_from(SETTINGS)
    entries = dataplane.switch_entries(classes, [4, 3], 0.1)
    got = sorted((s.match_dict["in_port"], s.match_dict["ip_dscp"], s.meter, s.goto, s.table, s.actions)
                 for s in entries.flows)
    ids = {c.name: c.meter_id for c in classes}
    dscps = (("ef", 46), ("af4", 34), ("af4", 36), ("best-effort", 0))
    want = sorted((port, dscp, ids[name], "forward", "classify", ())
                  for port in (3, 4) for name, dscp in dscps)
    assert got == want
    assert all(s.match_dict["eth_type"] == ETH_TYPE_IP for s in entries.flows)


def test_meters_drop_above_the_class_rate_and_unmetered_classes_only_count():
    classes = dataplane.classes_from(SETTINGS)
    entries = dataplane.switch_entries(classes, [3], 0.1)
    meters = {m.meter_id: m for m in entries.meters}
    ef, af4, be = classes
    assert (meters[be.meter_id].rate_kbps, meters[be.meter_id].burst_kb) == (6000, 600)
    assert (meters[af4.meter_id].rate_kbps, meters[af4.meter_id].burst_kb) == (20500, 2050)
    # 100 Gbit/s: never drops here
    assert meters[ef.meter_id].rate_kbps == controller_meters.COUNT_ONLY_KBPS
    slow = dataplane.classes_from(QosConfig.model_validate(
        {"classes": [{"name": "slow", "dscp": [8], "rank": 5, "rate_mbps": 0.1}]}))
    assert dataplane.switch_entries(slow, [1], 0.1).meters[0].burst_kb == controller_meters.MIN_BURST_KB


def test_nothing_without_host_ports_or_classes():
    classes = dataplane.classes_from(SETTINGS)
    assert dataplane.switch_entries(classes, [], 0.1) == Desired()
    assert dataplane.switch_entries((), [1, 2], 0.1) == Desired()


def test_the_default_class_catches_every_other_dscp_below_all_listed_ones():
    settings = QosConfig.model_validate({"classes": [
        {"name": "ef", "dscp": [46], "rank": 0},
        {"name": "best-effort", "dscp": [0], "rank": 9, "rate_mbps": 5, "default": True}]})
    classes = dataplane.classes_from(settings)
    entries = dataplane.switch_entries(classes, [7], 0.1)
    catch_all = [s for s in entries.flows if "ip_dscp" not in s.match_dict]
    assert len(catch_all) == 1
    assert catch_all[0].priority == dataplane.PRIO_DEFAULT < min(s.priority for s in entries.flows
                                                                 if s is not catch_all[0])
    assert catch_all[0].meter == classes[1].meter_id
    assert catch_all[0].match_dict == {"in_port": 7, "eth_type": ETH_TYPE_IP}


@pytest.mark.parametrize("build", [flows.to_flowmod, flows.to_delete])
def test_every_flow_serialises_without_a_switch(build):
    classes = dataplane.classes_from(SETTINGS)
    for spec in dataplane.switch_entries(classes, [1, 2], 0.1).flows:
        assert encode(build(spec))
