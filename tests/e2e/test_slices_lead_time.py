"""Predictive scaling on a real network: a replayed ramp of real Abilene demand gets
its capacity before the measured load crosses the old capacity (lead time > 0).

The slices lab scenario, shrunk: the triangle instead of Abilene, one slice (the
Abilene OD pair with the strongest daily swing in the fit span, replayed from its
daily trough on the first evaluation day, i.e. up the ramp), a predictor process
trained on the fit span alone, 1.5 s per 5-minute sample.
"""

from __future__ import annotations

from labs.slices_lab import Scenario, render, run


def test_a_replayed_ramp_is_scaled_for_before_the_load_arrives(tmp_path):
    scn = Scenario(topology="triangle", bw_scale=1.0, hosts_per_switch=4, slices=1,
                   place={"od1": ("s1", "s2")}, peak_mbps=8.0, per_member_mbps=2.0, max_members=4,
                   samples=36, step_real_s=1.5, setup_s=45)
    report = run(scn, workdir=tmp_path)
    print(render(report))
    result = report["analysis"]["od1"]
    assert result["steps"] >= 30, "the scaling loop ran once per replayed sample"
    assert "forecast" in result["modes"], "decisions used the predictor's forecasts"
    ups = [c for c in result["changes"] if c["action"] == "scale_up"]
    assert ups, f"the ramp caused no scale-up: {result}"
    ahead = [c for c in ups if c["lead_s"] is not None and c["lead_s"] > 0]
    assert ahead, f"no scale-up came before the load crossed the old capacity: {ups}"
    # A lead is measured from the decision to a later step whose load exceeded the old capacity.
    for c in ahead:
        assert c["measured"] <= c["old_capacity"] < next(
            r["measured"] for r in report["decisions"]["od1"] if r["t"] == c["crossed_t"])
    # The replay reached the slice: the meters counted about what the senders sent,
    # and the members received it (the meter's bandwidth is above the replayed peak).
    sent = sum(report["sent_bytes"]["od1"])
    counted = report["final"]["od1"]["bytes_in"]
    assert 0.8 * sent <= counted <= 1.1 * sent, (sent, counted)
    assert 0.95 * sent <= report["received_bytes"]["od1"] <= 1.05 * sent, (sent, report["received_bytes"])
