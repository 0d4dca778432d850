"""Predictive provisioning on a real network: the provisioning lab, shrunk.

Abilene in Mininet with the slices and provisioning apps and OpenFlow bundles, the
predictor trained on the fit span alone, two slices on real OD demand replayed up the
ramp of the first evaluation day; then seeded faulty changes of every kind and clean
changes through the API, and the staging copy rehearsing them. Judged by the report a
user reads: faults stopped in staging with the check that fits them, clean changes
passed, deployed and rolled back in under a second, forecast-driven changes in place
before the forecast crossing they answer.
"""

from __future__ import annotations

from labs.provisioning_lab import KINDS, Scenario, render, run


def test_the_provisioning_lab_stages_deploys_and_stops_every_seeded_fault(tmp_path):
    # No thin link and no spare turn-overs here yet: both made other changes fail in some
    # runs (open, see docs/provisioning.md); the spare is cabled and held down, and
    # tests/e2e/test_spare_link.py covers bringing it in and out.
    scn = Scenario(
        samples=40, step_real_s=2.0, faults=2 * len(KINDS), clean=4, spare_changes=0, setup_s=120, thin=()
    )
    report = run(scn, workdir=tmp_path)
    print(render(report))
    assert report["seeded_faults"] == 10 and report["faults_caught"] == 10, report["missed_faults"]
    assert {k: v["caught"] for k, v in report["faults_by_kind"].items()} == {k: 2 for k in KINDS}
    assert report["clean_changes"] == 4 and report["false_alarms"] == 0, report["false_alarm_details"]
    assert report["rollbacks"] == 4 and report["rollback_s"] < 1.0
    clean = [r for r in report["campaign"] if r["kind"] == "clean"]
    assert all(r["deployed"] == "DEPLOYED" and r["restored"] for r in clean), clean
    # The replay reached the slices and the app provisioned ahead of the forecast crossing.
    assert report["forecast_changes"], "the replayed ramp raised no need"
    for c in report["forecast_changes"]:
        assert c["state"] == "DEPLOYED" and c["before_crossing"], c
        assert [k["name"] for k in c["checks"]][:2] == ["verify", "covers-need"]
    sent = sum(sum(v) for v in report["sent_bytes"].values())
    got = sum(sum(v) for v in report["received_bytes"].values())
    assert 0.9 * sent <= got <= 1.02 * sent, (sent, got)
