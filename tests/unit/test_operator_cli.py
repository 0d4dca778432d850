"""The operator CLI (``foresight``) against a real gRPC server over a fake network:
what an operator reads, and the exit code and message when they ask for nonsense."""

import json

import numpy as np
import pytest

from apps.te import evaluate
from apps.te.paths import te_graph
from controller import operator_cli
from controller.api import create_server

import synthetic_tm
from fakeoftable import diamond, ipv4_frame


@pytest.fixture
def address():
    net = diamond({(1, 2): 1000.0, (2, 4): 1000.0, (1, 3): 9920.0, (3, 4): 2480.0})
    net.announce("h1", "h4")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))
    server, port, servicer = create_server(net.core, "127.0.0.1:0", max_workers=2)
    server.start()
    yield f"127.0.0.1:{port}"
    servicer.stopping = True
    server.stop(grace=None).wait(5)


def _run(capsys, *argv):
    code = operator_cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_topology_lists_switches_and_directed_links(address, capsys):
    code, out, _ = _run(capsys, "--controller", address, "topology")
    assert code == 0
    assert out.splitlines()[0] == "4 switches, 8 directed links"
    assert "1:1-2:1" in out and "1000.00 Mb" in out


def test_path_and_hosts(address, capsys):
    code, out, _ = _run(capsys, "--controller", address, "path", "10.0.0.1", "10.0.0.2")
    assert code == 0
    assert out.startswith("10.0.0.1 -> 10.0.0.2: s1[3>1] -> s2[1>2] -> s4[1>3]")
    assert "installed=True" in out
    code, out, _ = _run(capsys, "--controller", address, "hosts")
    assert code == 0 and out.strip().endswith("2 hosts")


def test_unknown_host_gives_exit_1_and_names_it(address, capsys):
    code, out, err = _run(capsys, "--controller", address, "path", "10.9.9.9", "10.0.0.1")
    assert code == 1
    assert "NOT_FOUND" in err and "10.9.9.9" in err


def test_unreachable_controller_is_reported(capsys):
    code, _, err = _run(capsys, "--controller", "127.0.0.1:1", "status")
    assert code == 1 and "UNAVAILABLE" in err


def test_te_is_a_lab_scenario(capsys):
    assert operator_cli.main(["lab", "list"]) == 0
    assert "te " in capsys.readouterr().out
    assert operator_cli.SCENARIOS["te"][0] == "labs.te_lab"


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
