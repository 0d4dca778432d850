"""apps.stitching.routemgr pieces that need no site: plane options, and the probes."""

from __future__ import annotations

import pytest

from apps.stitching.routemgr import PlaneConfig, main, probe


def test_a_plane_option_is_read_and_a_bad_one_named():
    assert PlaneConfig.parse("2:br-phy2:up2:50:1.5") == PlaneConfig(2, "br-phy2", "up2", 50.0, 1.5)
    with pytest.raises(ValueError, match="want N:BRIDGE:UPLINK:MBPS:COST"):
        PlaneConfig.parse("2:br-phy2:up2")
    with pytest.raises(ValueError, match="must be numbers"):
        PlaneConfig.parse("two:br:up:50:1")
    with pytest.raises(ValueError, match="MBPS > 0"):
        PlaneConfig.parse("1:br:up:0:1")


def test_the_command_line_refuses_a_bad_plane(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--site", "a", "--db", "unix:/nowhere", "--controller", "unix:/nowhere", "--plane", "1:x"])
    assert exited.value.code == 2 and "--plane '1:x'" in capsys.readouterr().err


def test_a_probe_reports_the_round_trip_of_what_answered():
    got = probe([("self", 1, "127.0.0.1")])
    assert set(got) == {("self", 1)} and 0 < got[("self", 1)] < 1000
