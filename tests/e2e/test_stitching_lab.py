"""`foresight lab run stitching` end to end (labs/stitching_lab.py): what its
report says must hold — nothing reachable before, an encrypted stitch whose traffic
the underlay shows only as WireGuard, a move to plane 2 when plane 1 is cut, a
bandwidth stitch at its rate, and nothing left after teardown."""

from __future__ import annotations

from labs.stitching_lab import render, run


def test_the_stitching_lab_report(tmp_path):
    report = run(tmp_path)
    print(render(report))
    assert report["before"] == {"a-h1 -> b-h1": False}
    assert report["refused"]["code"] == "PERMISSION_DENIED" and report["refused"]["rule"] == "no-globex"
    enc = report["encrypted"]
    assert enc["encrypted"] and enc["first_reply_s"] is not None
    assert enc["received_mbps"] >= 9.0 and enc["wireguard_packets"] > 1000 and enc["plaintext_packets"] == 0
    assert report["failover"]["plane_after"] == 2
    assert all(w["window_ms"] < 5000 for w in report["failover"]["windows"].values())
    assert 4.5 <= report["bandwidth"]["received_mbps"] <= 5.5
    assert report["teardown"] == {"a-h1 -> b-h1": False, "a-h3 -> b-h1": False, "left": []}
