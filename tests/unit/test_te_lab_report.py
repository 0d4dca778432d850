"""The TE lab's report, without Mininet: analysis turns synthetic counters into loss
and utilisation; the report renders both runs side by side."""

import json

import numpy as np
import pytest

from labs import te_lab_report as rep
from labs.te_plan import Scenario


def _report(n=4):
    plan = {"slot": 0, "start": 2880, "stop": 2880 + n, "start_time": 1078963200.0, "ratio": 16.0,
            "demand_scale": 0.016, "bw_scale": 0.001, "pairs": ["A->B", "A->C", "B->C"],
            "fit": {"windows": 10, "samples": 40, "flows": 3, "od_pairs": 6, "kept_share": 0.98,
                    "total_mbps_mean": 50.0, "total_mbps_p95": 60.0, "sp_mlu_p95": 1.1, "sp_mlu_max": 1.3,
                    "sp_over_1": 0.25, "lp_mlu_p95": 0.85, "lp_mlu_max": 0.9, "lp_over_1": 0.0, "slots": []}}
    scn = dict(vars(Scenario()))
    scn.update(samples=n)
    return {"scenario": scn, "plan": plan, "reference": {"sp_mlu": [1.1] * n, "lp_mlu": [0.8] * n},
            "runs": {}}


def _run(loss_on_ab: float, util_ab: list[float], decisions=()):
    """Synthetic counters: 1 MB per pair and interval, A->B losing ``loss_on_ab`` in
    interval 2; link A->B at ``util_ab`` per interval (10 Mbit/s, 2 s intervals)."""
    n = len(util_ab)
    sent = {p: [1_000_000] * n for p in ("A->B", "A->C", "B->C")}
    received = {p: list(v) for p, v in sent.items()}
    received["A->B"][2] = int(1_000_000 * (1 - loss_on_ab))
    times = [100.0 + 2 * i for i in range(n + 1)]
    tx = np.concatenate([[0], np.cumsum([u * 10e6 / 8 * 2 for u in util_ab])]).astype(int).tolist()
    return {"sent": sent, "received": received, "sample_times": times, "decisions": list(decisions),
            "links": [{"link": "A->B", "intf": "s1-eth2", "capacity_mbps": 10.0, "tx_bytes": tx},
                      {"link": "B->A", "intf": "s2-eth2", "capacity_mbps": 10.0, "tx_bytes": [0] * (n + 1)}],
            "controller_exit_s": 0.4, "route_groups": {"route_groups": 6, "carried_traffic": 4}}


def test_link_utilisation_from_counter_readings():
    u = rep.link_utilisation([0, 2_500_000, 5_000_000], [0.0, 2.0, 4.0], 10.0)
    assert u == pytest.approx([1.0, 1.0])
    assert rep.link_utilisation([0], [0.0], 10.0).size == 0


def test_analyse_counts_loss_per_interval_od_and_busy_links():
    report = _report()
    a = rep.analyse(_run(0.5, [0.5, 0.95, 1.0, 0.2]), report)
    assert a["offered_bytes"] == 12_000_000 and a["received_bytes"] == 11_500_000
    assert a["loss_pct"] == pytest.approx(100 * 0.5 / 12)
    assert [x["loss_pct"] for x in a["per_interval"]] == pytest.approx([0, 0, 100 * 0.5 / 3, 0])
    assert a["lossy_intervals"] == 1 and a["worst_interval"] == {"i": 2, "loss_pct": pytest.approx(50 / 3)}
    assert a["ods"][0] == {"pair": "A->B", "offered_bytes": 4_000_000, "received_bytes": 3_500_000,
                           "loss_pct": pytest.approx(12.5)}
    ab = next(r for r in a["links"] if r["link"] == "A->B")
    assert ab["max"] == pytest.approx(1.0, abs=1e-6) and ab["busy"] == 2
    assert ab["p95"] == pytest.approx(np.percentile([0.5, 0.95, 1.0, 0.2], 95), abs=1e-6)
    assert a["busy_link_intervals"] == 2 and a["busy_links"] == 1
    assert [x["busy_links"] for x in a["per_interval"]] == [0, 1, 1, 0]
    assert a["te"]["steps"] == 0


def test_analyse_never_counts_more_received_than_sent():
    run = _run(0.0, [0.1] * 4)
    run["received"]["A->C"][0] = 2_000_000          # duplicates cannot make up for losses elsewhere
    run["received"]["A->B"][0] = 0
    a = rep.analyse(run, _report())
    assert a["received_bytes"] == 11_000_000


def test_decisions_summary_counts_sources_actions_and_reroutes():
    rows = [{"time": 1.0, "app_time": 1078963200.0, "source": "measured", "predicted_mlu": 0.4,
             "measured_mlu": 0.3, "action": "new_ods"},
            {"time": 3.0, "app_time": 1078963500.0, "source": "forecast", "predicted_mlu": 0.95,
             "measured_mlu": 0.9, "action": "replan", "planned_mlu": 0.7, "moved": {"A-B": [], "A-C": []}},
            {"time": 5.0, "app_time": 1078963800.0, "source": "forecast", "predicted_mlu": 0.85,
             "measured_mlu": 1.01, "action": "keep", "planned_mlu": 0.84},
            {"unparsed": "{broken"}]
    te = rep.summarise_decisions(rows)
    assert te["steps"] == 3 and te["unparsed"] == 1
    assert te["sources"] == {"forecast": 2, "measured": 1}
    assert te["actions"] == {"keep": 1, "new_ods": 1, "replan": 1}
    assert te["reroutes"] == 1 and te["od_moves"] == 2
    assert te["predicted_mlu_max"] == 0.95 and te["measured_mlu_max"] == 1.01
    assert te["reroute_steps"] == [{"app_time": 1078963500.0, "source": "forecast", "predicted_mlu": 0.95,
                                    "measured_mlu": 0.9, "planned_mlu": 0.7, "moved": 2}]


def test_render_sets_te_off_beside_te_on_and_explains_the_figures():
    report = _report()
    decisions = [{"app_time": 1078963500.0, "source": "forecast", "predicted_mlu": 0.95, "measured_mlu": 0.9,
                  "action": "replan", "planned_mlu": 0.7, "moved": {"A-B": [["A-B", 0.6], ["A-C-B", 0.4]]}}]
    report["runs"] = {"off": _run(0.5, [0.5, 0.95, 1.0, 0.2]),
                      "on": _run(0.0, [0.5, 0.6, 0.7, 0.2], decisions)}
    report["analysis"] = {m: rep.analyse(r, report) for m, r in report["runs"].items()}
    report["run_s"] = 600.0
    text = rep.render(report)
    assert text.count("What the figures mean") == 1
    assert text.index("What the figures mean") < text.index("replay ")
    loss = next(line for line in text.splitlines() if line.startswith("loss "))
    assert "4.17 %" in loss and "0.00 %" in loss
    assert "TE off" in text and "TE on" in text
    busy = next(line for line in text.splitlines() if line.startswith("busy link-intervals"))
    assert busy.split()[-2:] == ["2", "0"]
    assert "A->B" in text and "12.50 %" in text                 # the worst OD pair
    assert "1 reroutes moving 1 OD pairs" in text and "00:05" in text   # 2004-03-11 00:00 UTC + 5 min
    assert "route groups at the end: 6 on the switches, 4 of them carried traffic" in text
    assert "split over several routes in the final plan: 1" in text
    json.dumps(report)                                           # the JSON report holds it all


def test_render_with_only_one_run_or_none():
    report = _report()
    report["runs"] = {"off": _run(0.0, [0.1] * 4)}
    report["analysis"] = {"off": rep.analyse(report["runs"]["off"], report)}
    text = rep.render(report)
    table = text[text.index("\noffered"):]
    assert "TE off" in table and "TE on" not in table and "TE decisions:" not in table
    report["analysis"] = {}
    assert "(no run completed)" in rep.render(report)
