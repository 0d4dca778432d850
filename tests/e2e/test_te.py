"""Traffic engineering on a real network: a ramping flow is about to saturate the link
another flow uses, and TE moves it off before the link fills.

ring4 (s1-s2-s3-s4-s1, 10 Mbit/s links). Flow A, s1 -> s2, sends 6 Mbit/s over the
s1-s2 link. Flow B, s4 -> s2, has two equal-cost routes and shortest-path forwarding
takes s4-s1-s2, so it shares that link; B ramps from 0.5 to 5 Mbit/s, so A + B would
pass the link's 10 Mbit/s. TE (threshold 0.8, measured from group and port counters
every 0.5 s, a step a second; no predictor) must re-split before the link is full,
the links must then carry the planned shares, and the two flows arrive whole. Each
flow is spread over 32 UDP source ports, as many connections are, so the per-flow
split (by source port) can divide it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time

import pytest

from labs.lab import ROOT, Lab

PEER = ROOT / "labs" / "tm_peer.py"
PORT = 5301
STEP_S = 1.5
A_MBPS = 6.0
SOCKETS = 32         # source ports per flow: a route's share of them is binomial around its split
B_RAMP = [0.5, 0.5, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]


def test_te_moves_a_flow_off_a_link_the_other_is_about_to_saturate(tmp_path):
    decisions = tmp_path / "te.jsonl"
    config = {"controller": {"providers": ["apps.te.app:provider"], "telemetry": {"poll_interval_s": 0.5}},
              "te": {"interval_s": 1.0, "threshold": 0.8, "min_gain": 0.05, "decisions_path": str(decisions)}}
    lab = Lab("ring4", bw_scale=0.1, hosts_per_switch=1, controller_config=config, workdir=tmp_path / "lab")
    procs = []
    try:
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        a, b, dst = (lab.net.get(lab.topo_hosts(s)[0]) for s in ("s1", "s4", "s2"))
        ip = {"A": a.IP(), "B": b.IP()}
        for host in (a, b, dst):
            host.cmd(f"ping -c1 -W2 {dst.IP() if host is not dst else a.IP()} >/dev/null")
        receiver = dst.popen([sys.executable, str(PEER), "recv", "--port", str(PORT)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        procs.append(receiver)
        assert receiver.stdout.readline().strip() == "receiving"
        start = time.time() + 3.0
        senders = {}
        for name, host, rates in (("A", a, [A_MBPS] * len(B_RAMP)), ("B", b, B_RAMP)):
            plan = tmp_path / f"plan-{name}.json"
            plan.write_text(json.dumps({"port": PORT, "flows": {dst.IP(): rates}, "sockets": SOCKETS}))
            senders[name] = host.popen([sys.executable, str(PEER), "send", "--plan", str(plan),
                                        "--start", f"{start:.3f}", "--step-s", str(STEP_S)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(senders[name])
        # Late in the replay (B near its peak): what every link carries, from port statistics.
        time.sleep(max(0.0, start + 0.8 * len(B_RAMP) * STEP_S - time.time()))
        late = {(link.src_dp_id, link.dst_dp_id): link.rate_mbps for link in lab.client.topology().links}
        late_at = time.time()
        sent = {}
        for name, proc in senders.items():
            out, err = proc.communicate(timeout=len(B_RAMP) * STEP_S + 30)
            assert proc.returncode == 0, err
            sent[name] = json.loads(out.strip().splitlines()[-1])["sent"][dst.IP()]
        time.sleep(1.0)
        receiver.stdin.close()
        received = json.loads(receiver.stdout.read().strip().splitlines()[-1])["received"]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(5)
        lab.stop()

    steps = [json.loads(line) for line in decisions.read_text().splitlines()]
    replans = [s for s in steps if s["action"] == "replan"]
    for s in replans:
        print(f"replan at {s['time'] - start:+.1f} s: measured MLU {s['measured_mlu']:.2f}, "
              f"predicted {s['predicted_mlu']:.2f} -> {s['planned_mlu']:.2f}: {s['moved']}")
    assert replans, f"TE never re-planned: {steps[-3:]}"
    first = replans[0]
    assert "s4-s2" in first["moved"], f"the ramping flow's OD was not re-split: {first['moved']}"
    assert any(path == "s4-s3-s2" for path, share in first["moved"]["s4-s2"] if share > 0.3)
    assert first["planned_mlu"] < first["predicted_mlu"]
    assert 0.8 < max(first["measured_mlu"], first["predicted_mlu"]) < 1.0, "moved on crossing, before full"
    # Before saturation: A + B offered at that moment still fit the link.
    offered_then = A_MBPS + B_RAMP[min(len(B_RAMP) - 1, max(0, int((first["time"] - start) / STEP_S)))]
    assert offered_then <= 10.0, f"TE moved only when the link was full ({offered_then} Mbit/s offered)"

    print("late link rates (Mbit/s):", {f"s{a}->s{b}": round(r, 2) for (a, b), r in sorted(late.items())})
    # The splits are real: the re-routed share of each flow is on the other side of the ring.
    # A's split in force then (the last re-plan of its OD before the reading, 0.5 s poll).
    split_a = [["s1-s2", 1.0]]
    for s in replans:
        if s["time"] <= late_at - 0.5 and "s1-s2" in s["moved"]:
            split_a = s["moved"]["s1-s2"]
    moved_a = A_MBPS * dict(map(tuple, split_a)).get("s1-s4-s3-s2", 0.0)
    assert moved_a > 0, "TE left all of A on the s1-s2 link"
    # Each of A's 32 source ports lands on a route by its slot: the number moved is
    # binomial around the plan; allow 4 standard deviations and one flow.
    share = moved_a / A_MBPS
    slack = (4 * math.sqrt(SOCKETS * share * (1 - share)) + 1) * A_MBPS / SOCKETS
    assert abs(late[(1, 4)] - moved_a) <= slack, f"A's split {share:.2f} is not on the switches: {late}"
    if share >= 0.2:
        assert late[(1, 4)] > 0, f"none of A took its new route: {late}"
    assert late[(3, 2)] == pytest.approx(B_RAMP[-1] + late[(1, 4)], rel=0.15), late
    assert late[(1, 2)] < 0.9 * 10.0, f"the s1-s2 link still runs full: {late}"
    by_src = {addr: name for name, addr in ip.items()}
    got = {by_src[src]: sum(counts.values()) for src, counts in received.items() if src in by_src}
    for name in ("A", "B"):
        total = sum(sent[name])
        print(f"flow {name}: sent {total / 1e6:.2f} MB, received {got.get(name, 0) / 1e6:.2f} MB "
              f"({100 * (1 - got.get(name, 0) / total):.1f} % lost)")
    # The last third offers 11 Mbit/s to what was a 10 Mbit/s path: only the move keeps it whole.
    tail = range(2 * len(B_RAMP) // 3, len(B_RAMP))
    for name, src in ip.items():
        tail_sent = sum(sent[name][i] for i in tail)
        tail_got = sum(received[src].get(str(i), 0) for i in tail)
        assert tail_got >= 0.97 * tail_sent, (f"flow {name} lost {100 * (1 - tail_got / tail_sent):.1f} % "
                                              f"at the end")
