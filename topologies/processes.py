"""What the network builders need from the host: the Open vSwitch tools running, and
child processes stopped by handle (SIGTERM, then SIGKILL), never by name.

Shared downward: the multi-site builder (``sites``) and the labs (``labs.lab``) both
use it; it imports nothing of ours.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"


class LabError(RuntimeError):
    """The lab could not be brought up; the message says which part failed."""


def ensure_ovs() -> None:
    """Start ovsdb-server and ovs-vswitchd (userspace datapath needs no module)."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (Mininet and Open vSwitch)")
    if subprocess.run(["ovs-vsctl", "--timeout=5", "show"], capture_output=True).returncode == 0:
        return
    subprocess.run([OVS_CTL, "start", "--system-id=random", "--no-mlockall"], capture_output=True)
    if subprocess.run(["ovs-vsctl", "--timeout=10", "show"], capture_output=True).returncode != 0:
        raise LabError("Open vSwitch is not running and could not be started (see ovs-ctl)")


def terminate(proc: subprocess.Popen | None, timeout_s: float) -> float | None:
    """SIGTERM, wait, SIGKILL if needed; the seconds it took to exit (None if it had)."""
    if proc is None or proc.poll() is not None:
        return None
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return time.monotonic() - start
