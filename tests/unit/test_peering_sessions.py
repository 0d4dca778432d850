"""The session state machine: each move with its reason, BGP states, teardowns."""

from __future__ import annotations

import pytest

from apps.peering.sessions import Session, after_bgp, step


def test_a_session_moves_with_reasons_and_records_when_it_came_up():
    s = Session("west")
    assert step(s, "REQUESTED", "the plan asks for it", 10.0).new == "REQUESTED"
    assert step(s, "REQUESTED", "the plan asks for it", 11.0) is None  # nothing changed
    step(s, "CONNECTING", "configured", 12.0)
    event = after_bgp(s, "established", "", 15.0)
    assert (event.old, event.new) == ("CONNECTING", "ESTABLISHED") and s.up_at == 15.0 and s.since == 15.0


def test_a_dropped_session_goes_down_with_the_bgp_state_and_is_counted():
    s = Session("west", state="ESTABLISHED")
    event = after_bgp(s, "active", "peer closed", 20.0)
    assert s.state == "DOWN" and s.drops == 1 and "peer closed" in event.detail
    assert after_bgp(s, "established", "", 21.0).new == "ESTABLISHED"


def test_a_max_prefix_teardown_is_torn_down_not_down():
    s = Session("east", state="ESTABLISHED")
    after_bgp(s, "idle", "max prefix limit exceeded", 30.0)
    assert s.state == "TORN_DOWN"


def test_states_the_speaker_does_not_hold_ignore_bgp_and_bad_states_are_refused():
    s = Session("east")
    assert after_bgp(s, "established", "", 1.0) is None
    with pytest.raises(ValueError, match="state"):
        step(s, "UP", "", 1.0)


def test_a_stored_session_round_trips_and_an_unknown_stored_state_is_reset():
    s = Session("west", state="ESTABLISHED", override="up")
    s.sla.committed_mbps = 4.5
    assert Session.from_json(s.as_json()) == s
    assert Session.from_json({"name": "x", "state": "BOGUS"}).state == "CANDIDATE"
