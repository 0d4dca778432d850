"""The backtest on a tiny synthetic panel: rows, served row, JSON and PNG through the CLI's pieces."""

import json

import numpy as np

from predictors import backtest
from predictors.models.naive import MeanOfLast, Persistence, SeasonalNaive
from predictors.panel import Split
from tests.lib.synthetic import DAY, make_panel, sinusoid


def test_backtest_rows_and_outputs(tmp_path):
    rng = np.random.default_rng(5)
    base = sinusoid(days=12, n=4).values
    panel = make_panel(base + rng.normal(0, 0.3, size=base.shape))
    split = Split(fit_end=8 * DAY, eval_end=12 * DAY)
    result = backtest.run(panel, split, [3600, 6 * 3600], "synthetic",
                          candidates=[Persistence(), MeanOfLast(3), SeasonalNaive()],
                          validation_steps=2 * DAY)
    keys = {"dataset", "model", "horizon_s", "mae", "rmse", "coverage_80", "coverage_95", "served"}
    assert all(keys <= set(r) for r in result.rows)
    served = [r for r in result.rows if r["served"]]
    assert [r["model"] for r in served] == ["served", "served"]
    assert sorted(r["horizon_s"] for r in served) == [3600, 21600]
    by_model = {(r["model"], r["horizon_s"]): r for r in result.rows}
    # the persistence row is exactly the rolling-origin persistence MAE over [fit_end - 1, eval_end - h)
    o = np.arange(split.fit_end - 1, split.eval_end - 6)
    expected = np.mean(np.abs(panel.values[o] - panel.values[o + 6]))
    assert abs(by_model[("persistence", 21600)]["mae"] - expected) < 1e-9
    assert by_model[("served", 21600)]["mae"] <= by_model[("persistence", 21600)]["mae"]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(result.rows))
    assert json.loads(path.read_text())[0]["dataset"] == "synthetic"
    backtest.plot(result, panel.slice(0, split.eval_end), 1, tmp_path / "plot.png", n_panels=2)
    assert (tmp_path / "plot.png").stat().st_size > 1000
    assert "served" in backtest.format_table(result.rows, ["persistence"])
