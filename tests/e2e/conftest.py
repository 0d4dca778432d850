"""Fixtures for Mininet end-to-end tests: each lab is started and stopped by handle."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from labs.lab import Lab

if os.geteuid() != 0:
    pytest.skip("e2e tests need root (Mininet, Open vSwitch)", allow_module_level=True)


@pytest.fixture
def lab_factory():
    """Start labs on demand; every lab started here is stopped at teardown."""
    labs: list[Lab] = []

    def start(topology: str, **kwargs) -> Lab:
        lab = Lab(topology, **kwargs)
        labs.append(lab)
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        return lab

    yield start
    for lab in labs:
        lab.stop()


def ovs_flows(bridge: str) -> list[str]:
    """The bridge's flows as ovs-ofctl prints them, without counters, sorted."""
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge],
                         capture_output=True, text=True, check=True).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def ping_reply_times(output: str) -> list[float]:
    """Receive timestamps (ping -D) of every echo reply in ping's output."""
    return [float(m.group(1)) for m in re.finditer(r"^\[(\d+\.\d+)\] \d+ bytes from", output, re.M)]
