"""What e2e tests read off a running network: a bridge's flows as OVS prints them,
the times ping saw its replies."""

from __future__ import annotations

import re
import subprocess


def ovs_flows(bridge: str) -> list[str]:
    """The bridge's flows as ovs-ofctl prints them, without counters, sorted."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def ping_reply_times(output: str) -> list[float]:
    """Receive timestamps (ping -D) of every echo reply in ping's output."""
    return [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", output, re.M)]
