"""The TE lab's plan, without Mininet: scale, window and flows come from the fit span
alone, the replay is the same window on the first evaluation day, and the two runs'
controller configurations differ only in the TE app."""

import numpy as np
import pytest

from controller.config import model as config_model
from labs import te_plan
from labs.te_plan import PlanError
from predictors.panel import Panel, Split
from topologies.catalog import load

from tests.lib import synthetic_tm

SPLIT = Split(fit_end=192, eval_end=324)        # 15-minute steps: 96 a day, two days to fit on


def _panel(seed: int = 0) -> Panel:
    cube = synthetic_tm.traffic(seed=seed)
    n = cube.shape[1]
    values = np.stack([cube[:, i, j] for i in range(n) for j in range(n) if i != j], axis=1)
    names = tuple(synthetic_tm.series_names())
    values[:, names.index("n1->n3")] = 0.01          # a pair too small to be worth a flow
    return Panel(values, 1_000_000_000 + 900 * np.arange(len(values)), 900, names)


def _scenario(**kw) -> te_plan.Scenario:
    return te_plan.Scenario(**{"samples": 12, "load_mbps": 40.0, "min_flow_mbps": 0.5, "k": 3, **kw})


def test_choose_window_puts_the_lp_percentile_at_the_target_and_prefers_overloads():
    per_day, days, samples = 8, 3, 2
    lp = np.full(per_day * days, 0.5)
    sp = np.full(per_day * days, 0.55)
    sp[[5, 13, 21]] = 0.9                           # slot 5 of every day: shortest paths much worse
    slot, ratio, table = te_plan.choose_window(sp, lp, per_day, samples, 0.85, 95)
    assert slot in (4, 5)                           # windows [4, 6) and [5, 7) both hold slot 5
    assert slot == 4                                # the earliest on a tie
    assert ratio == pytest.approx(0.85 / 0.5)
    row = next(r for r in table if r["slot"] == 4)
    assert row["sp_over_1"] == pytest.approx(0.5) and row["lp_over_1"] == 0
    assert {r["slot"] for r in table} == set(range(per_day))
    # Windows must lie whole inside the series: the last day's late slots have fewer.
    assert next(r for r in table if r["slot"] == 7)["windows"] == days - 1


def test_choose_window_refuses_when_nothing_overloads_or_nothing_fits():
    with pytest.raises(PlanError, match="no window where shortest paths overload"):
        te_plan.choose_window(np.full(16, 0.5), np.full(16, 0.5), 8, 2, 0.85, 95)
    with pytest.raises(PlanError, match="holds no whole 20-sample window"):
        te_plan.choose_window(np.ones(16), np.ones(16), 8, 20, 0.85, 95)


def test_baseline_paths_follow_the_controllers_metric():
    spec = load("abilene")
    by_label = {sw.label: sw.name for sw in spec.switches}
    od = (by_label["ATLAng"], by_label["IPLSng"])     # joined directly by the OC-48 link
    names = {sw.name: sw.label for sw in spec.switches}
    hops = te_plan.baseline_paths(spec, [od], "hops")[od][0]
    igp = te_plan.baseline_paths(spec, [od], "inverse_capacity")[od][0]
    assert [names[n] for n in hops] == ["ATLAng", "IPLSng"]
    assert [names[n] for n in igp] == ["ATLAng", "HSTNng", "KSCYng", "IPLSng"]


def test_plan_chooses_on_the_fit_span_and_replays_the_first_evaluation_day():
    spec, panel, scn = synthetic_tm.spec(), _panel(), _scenario()
    p = te_plan.plan(scn, spec, panel, SPLIT)
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
    a = te_plan.plan(scn, spec, panel, SPLIT)
    b = te_plan.plan(scn, spec, Panel(changed, panel.times, panel.step_s, panel.names), SPLIT)
    assert (a.slot, a.start, a.stop, a.ratio, a.demand_scale, a.bw_scale, a.pairs, a.fit) == \
           (b.slot, b.start, b.stop, b.ratio, b.demand_scale, b.bw_scale, b.pairs, b.fit)
    assert a.rates != b.rates                      # only the replayed values differ


def test_plan_refuses_a_window_past_the_evaluation_span():
    with pytest.raises(PlanError, match="runs past the evaluation span"):
        te_plan.plan(_scenario(samples=90), synthetic_tm.spec(), _panel(), Split(fit_end=216, eval_end=230))


def test_controller_config_validates_and_differs_only_in_the_te_provider(tmp_path):
    spec = load("abilene")
    p = te_plan.Plan(slot=0, start=2880, stop=2976, start_time=1.0e9, ratio=16.0, demand_scale=0.016,
                    bw_scale=0.001, pairs=["ATLAng->CHINng"], rates={"ATLAng->CHINng": [1.0]})

    class Pred:
        address = "127.0.0.1:5"

    scn = te_plan.Scenario()
    off = te_plan.controller_config(scn, p, False, Pred(), tmp_path / "d.jsonl", 123.0)
    on = te_plan.controller_config(scn, p, True, Pred(), tmp_path / "d.jsonl", 123.0)
    for config in (off, on):
        config["topology"] = spec.controller_topology(p.bw_scale, scn.max_bw_mbps)
        config_model().model_validate(config)
    assert off["controller"]["providers"] == [] and on["controller"]["providers"] == [te_plan.TE_PROVIDER]
    assert on["controller"]["predictor"]["address"] == "127.0.0.1:5"
    assert on["controller"]["clock"] == {"time_scale": 150.0, "virtual_origin_s": 1.0e9,
                                         "real_origin_s": 123.0}
    assert on["controller"]["routing"]["reference_mbps"] == pytest.approx(9.92)   # an OC-192 link costs 1
    assert on["te"]["interval_s"] == scn.step_real_s and on["te"]["decisions_path"].endswith("d.jsonl")


def test_series_names_match_the_te_app():
    assert te_plan.series("ATLAng->CHINng") == "od:ATLAng-CHINng"
