"""A link on the path goes down mid-ping: traffic continues on the other path."""

from __future__ import annotations

import subprocess
import time

from tests.lib.readings import ping_reply_times


def test_link_down_mid_ping_moves_traffic_within_2s(lab_factory):
    lab = lab_factory("triangle", bw_scale=0.1)
    h1, h2 = lab.net.get("h1"), lab.net.get("h2")
    assert "1 received" in h1.cmd(f"ping -c1 -W2 {h2.IP()}")
    before = lab.client.path(h1.IP(), h2.IP())
    assert [h.dp_id for h in before.hops] == [1, 2]

    ping = h1.popen(["ping", "-D", "-i", "0.01", "-w", "6", h2.IP()],
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2.0)
    down_at = time.time()
    lab.net.configLinkStatus("s1", "s2", "down")
    output, _ = ping.communicate(timeout=20)

    replies = ping_reply_times(output)
    after_failure = [t for t in replies if t > down_at]
    assert after_failure, f"no reply after the link went down:\n{output[-500:]}"
    gaps = [b - a for a, b in zip(replies, replies[1:])]
    worst_gap = max(gaps)
    print(f"worst gap between replies: {worst_gap * 1000:.0f} ms; first reply after failure "
          f"{(after_failure[0] - down_at) * 1000:.0f} ms")
    assert worst_gap < 2.0
    # Traffic kept flowing to the end of the run, on the path through s3.
    assert after_failure[-1] - down_at > 3.0
    after = lab.client.path(h1.IP(), h2.IP())
    assert [h.dp_id for h in after.hops] == [1, 3, 2]
    links = {(link.src_dp_id, link.dst_dp_id) for link in lab.client.topology().links}
    assert (1, 2) not in links and (2, 1) not in links

    # And back: once the link returns, the shortest path is used again.
    lab.net.configLinkStatus("s1", "s2", "up")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if [h.dp_id for h in lab.client.path(h1.IP(), h2.IP()).hops] == [1, 2]:
            break
        time.sleep(0.2)
    assert [h.dp_id for h in lab.client.path(h1.IP(), h2.IP()).hops] == [1, 2]
    assert "0% packet loss" in h1.cmd(f"ping -c3 -i 0.2 -W2 {h2.IP()}")
