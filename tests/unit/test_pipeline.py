"""Tests for controller.pipeline: tables declared as data, and flows checked against them."""

import pytest

from controller import cookies, flows
from controller.core import pipeline_flows
from controller.pipeline import CORE_TABLES, PIPELINE, Band, Pipeline, PipelineError, Table


TABLES = PIPELINE.tables      # the controller's and the repository's apps' (tests/conftest.py)


def test_declared_tables_are_consistent():
    ids = [t.table_id for t in TABLES]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] == 0
    names = {t.name for t in TABLES}
    for table in TABLES:
        for nxt in table.next_tables:
            assert PIPELINE.table(nxt).table_id > table.table_id
        if table.miss.startswith("goto:"):
            assert table.miss[len("goto:"):] in table.next_tables
        else:
            assert table.miss in ("drop", "controller")
        assert table.match_fields, table.name
    assert names == {"ingress", "classify", "forward", "flood", "lb", "member", "stitch", "egress", "exit"}


def test_the_controller_declares_four_tables_and_apps_the_rest():
    assert [(t.table_id, t.name, t.shared) for t in CORE_TABLES] == [
        (0, "ingress", True), (1, "classify", True), (2, "forward", True), (3, "flood", False)]
    assert {t.name: t.owner for t in TABLES if t.owner != "pipeline"} == {
        "lb": "slices", "member": "slices", "stitch": "stitching",
        "egress": "peering", "exit": "peering"}
    # An app's table is reachable from the shared tables it registered as entries.
    assert ("lb" in PIPELINE.table("classify").next_tables
            and "stitch" in PIPELINE.table("ingress").next_tables)
    assert [b.describe() for b in PIPELINE.bands_in("classify")] == [
        "peering 1300..1300", "slices 1010..1220", "qos 800..900"]


def test_table_lookups_by_name_and_id():
    assert [(t.table_id, t.name) for t in TABLES] == [(0, "ingress"), (1, "classify"), (2, "forward"),
                                                      (3, "flood"), (4, "lb"), (5, "member"), (6, "stitch"),
                                                      (7, "egress"), (8, "exit")]
    assert PIPELINE.table("classify").table_id == 1
    assert PIPELINE.table_by_id(3).name == "flood"
    assert PIPELINE.table_by_id(20) is None
    with pytest.raises(PipelineError, match="unknown table 'nowhere'"):
        PIPELINE.table("nowhere")


@pytest.mark.parametrize("tables, message", [
    ((Table("a", 0, frozenset()), Table("b", 0, frozenset())), "duplicate table id"),
    ((Table("a", 0, frozenset()), Table("a", 1, frozenset())), "duplicate table id or name"),
    ((Table("a", 0, frozenset(), next_tables=("nowhere",)),), "next table 'nowhere' is not declared"),
    ((Table("a", 0, frozenset(), next_tables=("b",)), Table("b", 1, frozenset(), next_tables=("a",))),
     "goto 'a' must go forward"),
])
def test_inconsistent_declarations_are_refused(tables, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline(tables)


def test_flow_with_undeclared_match_field_raises_naming_it():
    with pytest.raises(PipelineError, match=r"table forward: match field\(s\) \['ipv4_dst'\]"):
        flows.flow("forward", 100, {"eth_dst": "02:00:00:00:00:01", "ipv4_dst": "10.0.0.1"})


def test_flow_with_field_declared_only_elsewhere_raises():
    with pytest.raises(PipelineError, match="eth_type"):
        flows.flow("flood", 10, {"eth_type": 0x0800})


@pytest.mark.parametrize("table, goto", [("forward", "ingress"), ("flood", "forward"),
                                         ("ingress", "flood"), ("forward", "forward")])
def test_flow_with_disallowed_goto_raises(table, goto):
    with pytest.raises(PipelineError, match=f"goto '{goto}' not allowed"):
        flows.flow(table, 10, {}, goto=goto)


def test_flow_in_undeclared_table_raises():
    with pytest.raises(PipelineError, match="unknown table 'acl'"):
        flows.flow("acl", 10, {})


@pytest.mark.parametrize("priority", [-1, 0x10000])
def test_flow_priority_out_of_range_raises(priority):
    with pytest.raises(PipelineError, match="priority"):
        flows.flow("forward", priority, {})


def test_flow_with_unknown_action_raises():
    with pytest.raises(PipelineError, match="unknown action"):
        flows.flow("forward", 10, {}, [("push_mpls", 0x8847)])


def test_vlan_actions_need_a_tag_where_open_vswitch_checks_for_one():
    """pop_vlan and a vlan_vid set_field need a tag the match or a push_vlan guarantees
    (OVS: OFPBAC_MATCH_INCONSISTENT); set_field vlan_vid carries OFPVID_PRESENT."""
    tagged = {"eth_dst": "02:00:00:00:00:02", "vlan_vid": 0x1000 | 7}
    flows.flow("forward", 10, tagged, [("pop_vlan",), ("output", 1)])
    flows.flow("forward", 10, {"vlan_vid": (0x1000, 0x1000)}, [("pop_vlan",)])
    flows.flow("forward", 10, {}, [("push_vlan", 0x8100), ("set_field", "vlan_vid", 0x1007), ("output", 1)])
    for match, actions in (({}, [("pop_vlan",)]), ({"vlan_vid": 0}, [("pop_vlan",)]),
                           ({}, [("set_field", "vlan_vid", 0x1007)]),
                           (tagged, [("pop_vlan",), ("set_field", "vlan_vid", 0x1007)])):
        with pytest.raises(PipelineError, match="needs a VLAN tag"):
            flows.flow("forward", 10, match, actions)
    for value in (7, 0x1000, 0x1FFF, 0x2007):
        with pytest.raises(PipelineError, match="OFPVID_PRESENT"):
            flows.check_actions([("set_field", "vlan_vid", value)])
    with pytest.raises(PipelineError, match="push_vlan takes one ethertype"):
        flows.check_actions([("push_vlan", 0x0800)])
    with pytest.raises(PipelineError, match="vlan_vid"):
        flows.flow("classify", 10, {"vlan_vid": 0x1007})


def test_allowed_flow_is_accepted():
    spec = flows.flow("ingress", 0, {"in_port": 1}, goto="classify")
    assert spec.goto == "classify" and spec.match == (("in_port", 1),)


def test_miss_flows_do_what_the_tables_declare():
    """Each table's priority-0 catch-all is its declared miss behaviour: ingress
    misses go to slice, slice misses go to forward, forward asks the controller,
    flood, lb and member drop."""
    misses = {s.table: s for s in flows.miss_flows(cookie=7)}
    assert set(misses) == {t.name for t in TABLES}
    assert {s.cookie for s in misses.values()} == {7} and all(not s.match for s in misses.values())
    for table in TABLES:
        spec = misses[table.name]
        if table.miss.startswith("goto:"):
            assert (spec.goto, spec.actions) == (table.miss[len("goto:"):], ())
        elif table.miss == "controller":
            assert (spec.goto, spec.actions) == (None, (("controller",),))
        else:
            assert (spec.goto, spec.actions) == (None, ())


def test_the_core_installs_every_declared_miss():
    """No table's miss is left to the switch's default (OVS slow-paths such misses):
    the controller's tables always, an app's tables when the core runs that app."""
    app_tables = ("lb", "member", "stitch", "egress", "exit")
    installed = {s.key: s for s in pipeline_flows(app_tables=app_tables)}
    for miss in flows.miss_flows(cookie=cookies.cookie("pipeline")):
        assert installed.get(miss.key) == miss, f"core.pipeline_flows() lacks {miss.describe()}"
    without_apps = {s.table for s in pipeline_flows()}
    assert without_apps == {"ingress", "classify", "forward", "flood"}


@pytest.mark.parametrize("table, entered_from, message", [
    (Table("acl", 2, frozenset(), owner="acl"), (), "id 2 is already 'forward'"),
    (Table("lb", 9, frozenset(), owner="acl"), (), "table 'lb' is already declared by slices"),
    (Table("acl", 9, frozenset(), owner="acl"), ("flood",),
     "entered from 'flood', which is not a shared table"),
    (Table("acl", 9, frozenset(), owner="acl", shared=True), (), "only the controller's tables are shared"),
    (Table("acl", 300, frozenset(), owner="acl"), (), "outside 0..254"),
])
def test_an_app_table_that_clashes_is_refused(table, entered_from, message):
    pipeline = Pipeline()
    pipeline.add_table(Table("lb", 4, frozenset(), owner="slices"), ("classify",))
    with pytest.raises(PipelineError, match=message):
        pipeline.add_table(table, entered_from)
    assert [t.name for t in pipeline.tables] == ["ingress", "classify", "forward", "flood", "lb"]


@pytest.mark.parametrize("band, message", [
    (Band("flood", "acl", 10, 20), "not a shared table"),
    (Band("forward", "acl", 0, 20), "need 0 < low <= high"),
    (Band("forward", "acl", 30, 20), "need 0 < low <= high"),
    (Band("nowhere", "acl", 10, 20), "unknown table 'nowhere'"),
])
def test_a_band_outside_a_shared_table_or_out_of_order_is_refused(band, message):
    with pytest.raises(PipelineError, match=message):
        Pipeline().add_band(band)


def test_removing_an_owner_takes_its_tables_jumps_and_bands():
    pipeline = Pipeline()
    pipeline.add_table(Table("acl", 9, frozenset({"in_port"}), owner="acl"), ("ingress",))
    pipeline.add_band(Band("ingress", "acl", 100, 199))
    assert "acl" in pipeline.table("ingress").next_tables
    pipeline.remove_owner("acl")
    assert [t.name for t in pipeline.tables] == ["ingress", "classify", "forward", "flood"]
    assert "acl" not in pipeline.table("ingress").next_tables and pipeline.band("ingress", "acl") is None


def test_vip_traffic_goes_from_slice_to_lb_and_buckets_resubmit_to_member():
    flows.flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": "10.9.0.100"}, goto="lb")
    flows.flow("lb", 100, {"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": "10.9.0.100", "tcp_src": 5})
    flows.flow("member", 100, {"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": "10.9.0.100", "reg6": 3},
               [("output", 2)])
    assert flows.check_actions([("resubmit", "member")]) == (("resubmit", "member"),)
    with pytest.raises(PipelineError, match=r"resubmit to table 'forward' not allowed \(resubmit targets: "
                                            r"\['exit', 'member'\]\)"):
        flows.check_actions([("resubmit", "forward")])
    with pytest.raises(PipelineError, match="table member: its flows may not resubmit"):
        flows.flow("member", 10, {}, [("resubmit", "member")])
    with pytest.raises(PipelineError, match="goto 'lb' not allowed"):
        flows.flow("forward", 10, {}, goto="lb")


def test_slice_table_takes_addresses_and_ports_after_their_prerequisites():
    spec = flows.flow("classify", 100, {"eth_type": 0x0800, "ip_proto": 6, "ipv4_src": "10.0.0.1",
                                     "ipv4_dst": "10.9.0.100", "tcp_src": 1234, "tcp_dst": 80,
                                     "in_port": 3, "eth_src": "02:00:00:00:00:01",
                                     "eth_dst": "02:00:00:00:00:02"}, goto="forward")
    assert spec.match_dict["tcp_dst"] == 80
    flows.flow("classify", 100, {"eth_type": 0x0800, "ip_proto": 17, "udp_src": 53, "udp_dst": 53})
    with pytest.raises(PipelineError, match="goto 'flood' not allowed"):
        flows.flow("classify", 1, {}, goto="flood")
