"""The TE evaluator: OD mapping, schemes on a synthetic topology and traffic (no scheme
ever beats the oracle, the scaling hits oracle mean 0.8), the policy plumbing, and a
whole ``run`` on a tiny dataset laid out like GÉANT's."""

import json

import numpy as np
import pytest

from apps.te import TEError
from labs import te_eval as ev
from apps.te.paths import te_graph
from topologies.catalog import load

from tests.lib import synthetic_tm


def test_od_pairs_map_dataset_labels_to_switch_names():
    spec = load("abilene")
    assert ev.od_pairs(spec, ["ATLAM5->ATLAng", "WASHng->STTLng"]) == [("s1", "s2"), ("s12", "s11")]
    with pytest.raises(TEError, match="node 'NOPE' is not in topology 'abilene'"):
        ev.od_pairs(spec, ["ATLAM5->NOPE"])
    with pytest.raises(TEError, match="not of the form SRC->DST"):
        ev.od_pairs(spec, ["ATLAM5"])


def test_build_network_on_abilene_covers_all_132_pairs():
    spec = load("abilene")
    labels = [sw.label for sw in spec.switches]
    names = [f"{a}->{b}" for a in labels for b in labels if a != b]
    net = ev.build_network(te_graph(spec), ev.od_pairs(spec, names), k=4)
    assert len(net.ods) == 132 and len(net.candidates.links) == 30
    assert net.candidates.n_paths == 4 * 132 - 6       # a few pairs have fewer than 4 loop-free paths
    assert net.shortest.n_paths == 132
    assert np.add.reduceat(net.ecmp_x, net.ecmp.offsets[:-1]) == pytest.approx(np.ones(132))


def test_no_scheme_beats_the_oracle_and_scaling_gives_oracle_mean_0_8():
    spec = synthetic_tm.spec()
    net = ev.build_network(te_graph(spec), ev.od_pairs(spec, synthetic_tm.series_names()), k=3)
    tms = synthetic_tm.od_series()
    targets = np.arange(10, 40)
    rng = np.random.default_rng(0)
    noisy = tms[targets] * rng.lognormal(0, 0.3, size=tms[targets].shape)
    res = ev.evaluate_span(net, tms, targets, {"predictive_te": noisy, "robust": np.stack(
        [noisy, tms[targets - 1]], axis=1)})
    for scheme in ev.SCHEMES + ("robust",):
        assert res.mlu[scheme].shape == (30,)
        assert np.all(res.ratio(scheme) >= 1 - 1e-6), scheme
    assert np.all(res.ratio("shortest_path") > 1.01)        # the thin link makes routing matter
    factor = res.scale_factor()
    assert np.mean(factor * res.mlu["oracle"]) == pytest.approx(0.8)
    row = res.summary("reactive_te")
    assert row["congested_intervals"] == int(np.sum(factor * res.mlu["reactive_te"] > 1))
    assert row["mlu_ratio_mean"] == pytest.approx(np.mean(res.mlu["reactive_te"] / res.mlu["oracle"]))
    assert row["mlu_ratio_max"] >= row["mlu_ratio_p95"] >= row["mlu_ratio_p50"] >= 1 - 1e-6
    assert row["solve_ms_p50"] > 0 and res.summary("ecmp")["solve_ms_p50"] is None
    # The reactive plan for t is the oracle's plan for t - 1: on a repeated matrix they agree.
    same = np.repeat(tms[:1], 5, axis=0)
    res_same = ev.evaluate_span(net, same, np.arange(1, 5), {})
    assert res_same.mlu["reactive_te"] == pytest.approx(res_same.mlu["oracle"], rel=1e-9)


def test_policy_plans_fall_back_to_the_last_measurement():
    mean = np.array([[1.0, np.nan]])
    qs = np.stack([np.full((1, 2), v) for v in (0.5, 0.8, 3.0, 4.0)])
    previous = np.array([[7.0, 9.0]])
    assert ev.policy_plan("mean", mean, qs, previous).tolist() == [[1.0, 9.0]]
    assert ev.policy_plan("q0.9", mean, qs, previous).tolist() == [[3.0, 3.0]]
    assert ev.policy_plan("mean+q0.9", mean, qs, previous).tolist() == [[[1.0, 9.0], [3.0, 3.0]]]
    with pytest.raises(TEError, match="unknown predictive policy 'q0.5'"):
        ev.policy_plan("q0.5", mean, qs, previous)


def test_choose_policy_minimises_mean_plus_p95():
    ones = np.ones(20)
    spread = np.linspace(1.0, 1.2, 20)
    mlu = {"oracle": ones, "mean": 1.05 * ones, "q0.9": spread, "q0.975": 1.02 * ones,
           "mean+q0.9": 1.1 * ones}
    assert ev.choose_policy(ev.SpanResult(np.arange(20), mlu)) == "q0.975"


def test_validation_steps_two_days_or_a_third_of_the_fit_span():
    assert ev.validation_steps(300, 2880) == 576
    assert ev.validation_steps(900, 216) == 72


def test_run_on_a_tiny_geant_like_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("FORESIGHT_DATA_DIR", str(synthetic_tm.write_geant_like(tmp_path / "data")))
    monkeypatch.setenv("FORESIGHT_MODELS", "persistence,mean_last_2")
    said = []
    evaluation = ev.run("geant", k=3, say=said.append)
    res = evaluation.result
    assert res.targets[0] == 216 and res.targets[-1] == 323            # the evaluation span, all of it
    assert evaluation.validation.targets[0] == 144 and evaluation.validation.targets[-1] == 215
    assert evaluation.policy in ev.POLICIES
    assert any("chosen on fit-span intervals [144, 216)" in line for line in said)
    rows = evaluation.rows()
    assert [r["scheme"] for r in rows] == list(ev.SCHEMES)
    for r in rows:
        assert r["mlu_ratio_p50"] >= 1 - 1e-6 and r["mlu_ratio_mean"] >= 1 - 1e-6
    assert np.mean(res.scale_factor() * res.mlu["oracle"]) == pytest.approx(0.8)
    table = ev.format_table(evaluation)
    assert "geant: evaluation intervals [216, 324) (108)" in table and "predictive_te" in table
    json.dumps(rows)
    png = tmp_path / "te.png"
    ev.plot(evaluation, png)
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TEError, match="unknown dataset 'nope'"):
        ev.run("nope")
