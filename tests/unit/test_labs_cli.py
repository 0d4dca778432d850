"""The ``foresight`` entry point (``labs.cli``): the operator CLI's northbound commands
plus ``lab`` (scenarios) and ``te-eval`` (offline TE evaluation on a dataset)."""

import importlib
import json

import numpy as np
import pytest

from labs import te_eval as evaluate
from apps.te.paths import te_graph
from labs import cli

from tests.lib import synthetic_tm


def _run(capsys, *argv):
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_te_is_a_lab_scenario(capsys):
    assert cli.main(["lab", "list"]) == 0
    assert "te " in capsys.readouterr().out
    assert cli.SCENARIOS["te"][0] == "labs.te_lab"


def test_every_scenario_module_has_a_main():
    for module, _ in cli.SCENARIOS.values():
        assert callable(importlib.import_module(module).main)


def test_an_unknown_scenario_is_named(capsys):
    code, _, err = _run(capsys, "lab", "run", "nope")
    assert code == 2 and "unknown scenario 'nope'" in err and "stitching" in err


def test_the_northbound_commands_are_still_there(capsys):
    code, _, err = _run(capsys, "--controller", "127.0.0.1:1", "status")
    assert code == 1 and "UNAVAILABLE" in err


def _small_evaluation(dataset, k=4, say=None, **_):
    """A real evaluation of the synthetic four-node topology, standing in for a dataset."""
    spec = synthetic_tm.spec()
    net = evaluate.build_network(te_graph(spec), evaluate.od_pairs(spec, synthetic_tm.series_names()), k)
    tms = synthetic_tm.od_series(steps=20)
    targets = np.arange(10, 20)
    result = evaluate.evaluate_span(net, tms, targets, {"predictive_te": 1.1 * tms[targets]})
    return evaluate.Evaluation(dataset, k, "mean", result, result, 900.0 * targets, "persistence")


def test_te_eval_all_prints_and_writes_each_dataset(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(evaluate, "run", _small_evaluation)
    code, out, _ = _run(capsys, "te-eval", "--dataset", "all", "--k", "3",
                        "--json", str(tmp_path / "te.json"), "--png", str(tmp_path / "te.png"))
    assert code == 0
    assert "abilene: evaluation intervals [10, 20) (10), k=3" in out
    assert "geant: evaluation intervals [10, 20) (10), k=3" in out
    for dataset in ("abilene", "geant"):
        rows = json.loads((tmp_path / f"te_{dataset}.json").read_text())
        assert [r["scheme"] for r in rows] == list(evaluate.SCHEMES)
        assert set(rows[0]) == {"dataset", "scheme", "mlu_ratio_mean", "mlu_ratio_p50", "mlu_ratio_p95",
                                "mlu_ratio_max", "congested_intervals", "solve_ms_p50"}
        assert {r["dataset"] for r in rows} == {dataset}
        assert rows[-1]["scheme"] == "oracle" and rows[-1]["mlu_ratio_max"] == pytest.approx(1.0)
        assert (tmp_path / f"te_{dataset}.png").stat().st_size > 0


def test_te_eval_defaults_to_reports_and_names_bad_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(evaluate, "run", _small_evaluation)
    code, out, _ = _run(capsys, "te-eval", "--dataset", "geant", "--dataset", "geant")
    assert code == 0 and out.count("evaluation intervals") == 1
    assert (tmp_path / "reports" / "te_geant.json").exists()
    assert (tmp_path / "reports" / "te_geant.png").exists()
    monkeypatch.undo()
    code, _, err = _run(capsys, "te-eval", "--dataset", "geant", "--k", "0")
    assert code == 2 and "geant: k must be a positive integer, got 0" in err
