"""Tests for controller.pipeline (tables declared as data) and controller.cookies."""

import pytest

from controller import cookies, flows
from controller.cookies import CookieError
from controller.pipeline import PIPELINE, TABLES, Pipeline, PipelineError, Table


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
    assert names == {"ingress", "forward", "flood"}


def test_table_lookups_by_name_and_id():
    assert PIPELINE.table("forward").table_id == 1
    assert PIPELINE.table_by_id(2).name == "flood"
    assert PIPELINE.table_by_id(9) is None
    with pytest.raises(PipelineError, match="unknown table 'egress'"):
        PIPELINE.table("egress")


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
        flows.flow("forward", 10, {}, [("pop_vlan",)])


def test_allowed_flow_is_accepted():
    spec = flows.flow("ingress", 0, {"in_port": 1}, goto="forward")
    assert spec.goto == "forward" and spec.match == (("in_port", 1),)


# ---- cookies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("owner", sorted(cookies.OWNERS))
@pytest.mark.parametrize("low", [0, 1, 0xBEEF, cookies.LOW_MASK])
def test_cookie_owner_round_trip(owner, low):
    value = cookies.cookie(owner, low)
    assert cookies.owner_of(value) == owner
    assert value & cookies.LOW_MASK == low
    assert value < 2 ** 64


def test_owner_codes_are_distinct():
    assert len(set(cookies.OWNERS.values())) == len(cookies.OWNERS)


def test_unknown_owner_is_an_error():
    with pytest.raises(CookieError, match="unknown cookie owner 'acl'"):
        cookies.cookie("acl")


@pytest.mark.parametrize("low", [cookies.LOW_MASK + 1, 1 << 60, -1])
def test_low_part_that_does_not_fit_is_an_error(low):
    with pytest.raises(CookieError, match="does not fit in 48 bits"):
        cookies.cookie("forwarding", low)


@pytest.mark.parametrize("value", [0, 0xDEAD << cookies.OWNER_SHIFT, 0x1234])
def test_cookies_nobody_owns_have_no_owner(value):
    assert cookies.owner_of(value) is None
