"""The TE lab's planning and report, without Mininet: scale, window and flows come
from the fit span alone and the replay is the same window on the first evaluation
day; analysis turns synthetic counters into loss and utilisation; the report renders
both runs side by side."""

import json

import numpy as np
import pytest

from controller import operator_cli
from controller.config import Config
from labs import te_lab
from labs import te_lab_report as rep
from labs.lab import LabError
from predictors.panel import Panel, Split
from topologies.catalog import load

import synthetic_tm

SPLIT = Split(fit_end=192, eval_end=324)        # 15-minute steps: 96 a day, two days to fit on


def _panel(seed: int = 0) -> Panel:
    cube = synthetic_tm.traffic(seed=seed)
    n = cube.shape[1]
    values = np.stack([cube[:, i, j] for i in range(n) for j in range(n) if i != j], axis=1)
    names = tuple(synthetic_tm.series_names())
    values[:, names.index("n1->n3")] = 0.01          # a pair too small to be worth a flow
    return Panel(values, 1_000_000_000 + 900 * np.arange(len(values)), 900, names)


def _scenario(**kw) -> te_lab.Scenario:
    return te_lab.Scenario(**{"samples": 12, "load_mbps": 40.0, "min_flow_mbps": 0.5, "k": 3, **kw})


# --- planning -------------------------------------------------------------------------------

def test_choose_window_puts_the_lp_percentile_at_the_target_and_prefers_overloads():
    per_day, days, samples = 8, 3, 2
    lp = np.full(per_day * days, 0.5)
    sp = np.full(per_day * days, 0.55)
    sp[[5, 13, 21]] = 0.9                           # slot 5 of every day: shortest paths much worse
    slot, ratio, table = te_lab.choose_window(sp, lp, per_day, samples, 0.85, 95)
    assert slot in (4, 5)                           # windows [4, 6) and [5, 7) both hold slot 5
    assert slot == 4                                # the earliest on a tie
    assert ratio == pytest.approx(0.85 / 0.5)
    row = next(r for r in table if r["slot"] == 4)
    assert row["sp_over_1"] == pytest.approx(0.5) and row["lp_over_1"] == 0
    assert {r["slot"] for r in table} == set(range(per_day))
    # Windows must lie whole inside the series: the last day's late slots have fewer.
    assert next(r for r in table if r["slot"] == 7)["windows"] == days - 1


def test_choose_window_refuses_when_nothing_overloads_or_nothing_fits():
    with pytest.raises(LabError, match="no window where shortest paths overload"):
        te_lab.choose_window(np.full(16, 0.5), np.full(16, 0.5), 8, 2, 0.85, 95)
    with pytest.raises(LabError, match="holds no whole 20-sample window"):
        te_lab.choose_window(np.ones(16), np.ones(16), 8, 20, 0.85, 95)


def test_baseline_paths_follow_the_controllers_metric():
    spec = load("abilene")
    by_label = {sw.label: sw.name for sw in spec.switches}
    od = (by_label["ATLAng"], by_label["IPLSng"])     # joined directly by the OC-48 link
    names = {sw.name: sw.label for sw in spec.switches}
    hops = te_lab.baseline_paths(spec, [od], "hops")[od][0]
    igp = te_lab.baseline_paths(spec, [od], "inverse_capacity")[od][0]
    assert [names[n] for n in hops] == ["ATLAng", "IPLSng"]
    assert [names[n] for n in igp] == ["ATLAng", "HSTNng", "KSCYng", "IPLSng"]


def test_plan_chooses_on_the_fit_span_and_replays_the_first_evaluation_day():
    spec, panel, scn = synthetic_tm.spec(), _panel(), _scenario()
    p = te_lab.plan(scn, spec, panel, SPLIT)
    assert p.start == 192 + p.slot                  # the same time of day on the first evaluation day
    assert p.stop - p.start == scn.samples and p.stop <= SPLIT.eval_end
    assert p.bw_scale == pytest.approx(p.demand_scale / p.ratio)
    # Scale: the mean total over the fit-span windows is load_mbps.
    idx = np.concatenate([np.arange(d * 96 + p.slot, d * 96 + p.slot + scn.samples)
                          for d in range(2) if d * 96 + p.slot + scn.samples <= SPLIT.fit_end])
    assert panel.values[idx].sum(axis=1).mean() * p.demand_scale == pytest.approx(scn.load_mbps)
    assert p.fit["samples"] == idx.size
    # Flows: the pairs whose scaled fit-window mean reaches min_flow_mbps, nothing else.
    means = panel.values[idx].mean(axis=0) * p.demand_scale
    assert p.pairs == [n for n, m in zip(panel.names, means) if m >= scn.min_flow_mbps]
    assert "n1->n3" not in p.pairs and len(p.pairs) == len(panel.names) - 1 == p.fit["flows"]
    assert 0.99 < p.fit["kept_share"] < 1.0
    # The replay is the evaluation window, scaled.
    for pair in p.pairs:
        col = panel.names.index(pair)
        assert p.rates[pair] == pytest.approx(panel.values[p.start:p.stop, col] * p.demand_scale)
    # What the choice saw: shortest paths overload in some fit-window samples; the LP's p95 is the target.
    assert p.fit["sp_over_1"] > 0
    assert p.fit["lp_mlu_p95"] <= scn.lp_target + 1e-6


def test_plan_never_reads_the_evaluation_span_for_its_choices():
    spec, scn = synthetic_tm.spec(), _scenario()
    panel = _panel()
    changed = panel.values.copy()
    changed[SPLIT.fit_end:] *= np.random.default_rng(5).uniform(0.1, 10, size=changed[SPLIT.fit_end:].shape)
    a = te_lab.plan(scn, spec, panel, SPLIT)
    b = te_lab.plan(scn, spec, Panel(changed, panel.times, panel.step_s, panel.names), SPLIT)
    assert (a.slot, a.start, a.stop, a.ratio, a.demand_scale, a.bw_scale, a.pairs, a.fit) == \
           (b.slot, b.start, b.stop, b.ratio, b.demand_scale, b.bw_scale, b.pairs, b.fit)
    assert a.rates != b.rates                      # only the replayed values differ


def test_plan_refuses_a_window_past_the_evaluation_span():
    with pytest.raises(LabError, match="runs past the evaluation span"):
        te_lab.plan(_scenario(samples=90), synthetic_tm.spec(), _panel(), Split(fit_end=216, eval_end=230))


def test_controller_config_validates_and_differs_only_in_the_te_provider(tmp_path):
    spec = load("abilene")
    p = te_lab.Plan(slot=0, start=2880, stop=2976, start_time=1.0e9, ratio=16.0, demand_scale=0.016,
                    bw_scale=0.001, pairs=["ATLAng->CHINng"], rates={"ATLAng->CHINng": [1.0]})

    class Pred:
        address = "127.0.0.1:5"

    scn = te_lab.Scenario()
    off = te_lab.controller_config(scn, p, False, Pred(), tmp_path / "d.jsonl", 123.0)
    on = te_lab.controller_config(scn, p, True, Pred(), tmp_path / "d.jsonl", 123.0)
    for config in (off, on):
        config["topology"] = spec.controller_topology(p.bw_scale, scn.max_bw_mbps)
        Config.model_validate(config)
    assert off["controller"]["providers"] == [] and on["controller"]["providers"] == [te_lab.TE_PROVIDER]
    assert on["controller"]["predictor"]["address"] == "127.0.0.1:5"
    assert on["controller"]["clock"] == {"time_scale": 150.0, "virtual_origin_s": 1.0e9,
                                         "real_origin_s": 123.0}
    assert on["controller"]["routing"]["reference_mbps"] == pytest.approx(9.92)   # an OC-192 link costs 1
    assert on["te"]["interval_s"] == scn.step_real_s and on["te"]["decisions_path"].endswith("d.jsonl")


def test_series_names_match_the_te_app():
    assert te_lab.series("ATLAng->CHINng") == "od:ATLAng-CHINng"


def test_te_is_a_lab_scenario(capsys):
    assert operator_cli.main(["lab", "list"]) == 0
    assert "te " in capsys.readouterr().out
    assert operator_cli.SCENARIOS["te"][0] == "labs.te_lab"


# --- analysis and rendering -------------------------------------------------------------------

def _report(n=4):
    plan = {"slot": 0, "start": 2880, "stop": 2880 + n, "start_time": 1078963200.0, "ratio": 16.0,
            "demand_scale": 0.016, "bw_scale": 0.001, "pairs": ["A->B", "A->C", "B->C"],
            "fit": {"windows": 10, "samples": 40, "flows": 3, "od_pairs": 6, "kept_share": 0.98,
                    "total_mbps_mean": 50.0, "total_mbps_p95": 60.0, "sp_mlu_p95": 1.1, "sp_mlu_max": 1.3,
                    "sp_over_1": 0.25, "lp_mlu_p95": 0.85, "lp_mlu_max": 0.9, "lp_over_1": 0.0, "slots": []}}
    scn = dict(vars(te_lab.Scenario()))
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
