"""What the integration tests share: commands, waiting, and a netdev bridge with
veth ports controlled by a real controller process, all removed afterwards."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from labs.lab import ControllerProcess, ensure_ovs


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    """The first truthy value of ``predicate()``; AssertionError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def controlled_bridge(bridge: str, dp_id: int, config: dict, ports: list[tuple[str, str, int | None]],
                      no_ipv6: bool = False):
    """A secure-mode OpenFlow 1.3 netdev bridge ``bridge`` whose ports are veths
    ``(switch side, host side, OpenFlow port or None)``, connected to a controller
    process started with ``config``. Yields ``(bridge, {port: host side}, controller)``;
    the bridge, veths, controller and its directory are gone afterwards."""
    ensure_ovs()
    workdir = Path(tempfile.mkdtemp(prefix="foresight-int-"))
    controller = ControllerProcess(config, workdir)
    controller.start()
    try:
        run("ovs-vsctl", "--", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
            "fail_mode=secure", "protocols=OpenFlow13", f"other-config:datapath-id={dp_id:016x}")
        for switch_side, host_side, port in ports:
            run("ip", "link", "add", switch_side, "type", "veth", "peer", "name", host_side)
            for name in (switch_side, host_side):
                if no_ipv6:     # no router solicitations or MLD wandering into the bridge
                    run("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
                run("ip", "link", "set", name, "up")
            extra = ("--", "set", "interface", switch_side, f"ofport_request={port}") if port else ()
            run("ovs-vsctl", "add-port", bridge, switch_side, *extra)
        run("ovs-vsctl", "set-controller", bridge, f"tcp:127.0.0.1:{controller.of_port}")
        yield bridge, {port: host_side for _, host_side, port in ports}, controller
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], capture_output=True)
        for switch_side, _, _ in ports:
            subprocess.run(["ip", "link", "del", switch_side], capture_output=True)
        controller.stop()
        subprocess.run(["rm", "-rf", str(workdir)])


@contextlib.contextmanager
def controlled_bridges(bridges: list[tuple[str, int]], config: dict,
                       veths: list[tuple[str, str | None, int | None, str, str | None, int | None]]):
    """Secure-mode OpenFlow 1.3 netdev bridges ``(name, dp_id)``, all connected to one
    controller process started with ``config``, joined by veth pairs ``(end, its bridge or
    None, OpenFlow port or None, other end, its bridge or None, port or None)``: both ends
    on bridges make a link between switches, an end on none is a host side. Yields the
    controller; the bridges, veths, controller and its directory are gone afterwards."""
    ensure_ovs()
    workdir = Path(tempfile.mkdtemp(prefix="foresight-int-"))
    controller = ControllerProcess(config, workdir)
    controller.start()
    try:
        for bridge, dp_id in bridges:
            run("ovs-vsctl", "--", "add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev",
                "fail_mode=secure", "protocols=OpenFlow13", f"other-config:datapath-id={dp_id:016x}")
        for end, bridge, port, other, other_bridge, other_port in veths:
            run("ip", "link", "add", end, "type", "veth", "peer", "name", other)
            for name, on, number in ((end, bridge, port), (other, other_bridge, other_port)):
                run("sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1")
                run("ip", "link", "set", name, "up")
                if on is not None:
                    extra = ("--", "set", "interface", name, f"ofport_request={number}") if number else ()
                    run("ovs-vsctl", "add-port", on, name, *extra)
        for bridge, _ in bridges:
            run("ovs-vsctl", "set-controller", bridge, f"tcp:127.0.0.1:{controller.of_port}")
        yield controller
    finally:
        for bridge, _ in bridges:
            subprocess.run(["ovs-vsctl", "--if-exists", "del-br", bridge], capture_output=True)
        for end, *_ in veths:
            subprocess.run(["ip", "link", "del", end], capture_output=True)
        controller.stop()
        subprocess.run(["rm", "-rf", str(workdir)])
