"""An edge network with real BGP around a Foresight controller running the peering app.

``PeeringNetwork`` starts, in order: the controller (its own process, the peering app
configured from ``neighbours``), a Mininet network (``topologies.mininet_topo.EdgeTopo``:
the border switch ``edge``, our sender ``src1``, our speaker host ``bgp``, one host per
neighbour with its link shaped to its capacity), GoBGP in ``bgp`` (its API reached
through a unix-socket relay, so it stays on loopback) and one FRR router per neighbour
originating its prefixes. ``stop`` ends everything by handle, whatever state
``start`` reached; the lab, the e2e tests and the benchmark share it.

Every neighbour host accepts traffic for any destination (``local 100.64.0.0/10``),
so a receiver bound there counts what the edge switch sent it.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from labs.lab import ControllerProcess, LabError, _quiet_htb, start_mininet
from proto import peering_pb2
from topologies.bgp import FrrRouter, GoBgpDaemon

LAN = "10.100.0."
OUR_ASN = 65000
PROVIDER = "apps.peering.app:provider"
DESTINATIONS = "100.64.0.0/10"
# Open vSwitch refreshes rule and group counters when its revalidators run, every 500 ms
# by default: against a lab step of 0.75 s a group's measured rate would swing by half
# (one counter refresh in a step, or two). At 100 ms the counters keep up with the lab's
# compressed clock. The setting is global to ovs-vswitchd: restored on stop.
REVALIDATE_MS = 100


def max_revalidator(value: str | None) -> str | None:
    """Set ovs-vswitchd's ``other_config:max-revalidator`` (None removes it); the old value."""
    old = subprocess.run(["ovs-vsctl", "--if-exists", "get", "Open_vSwitch", ".",
                          "other_config:max-revalidator"], capture_output=True, text=True).stdout.strip()
    if value is None:
        subprocess.run(["ovs-vsctl", "remove", "Open_vSwitch", ".", "other_config", "max-revalidator"],
                       capture_output=True)
    else:
        subprocess.run(["ovs-vsctl", "set", "Open_vSwitch", ".", f"other_config:max-revalidator={value}"],
                       capture_output=True, check=True)
    return old.strip('"') or None


@dataclass
class NeighbourSpec:
    """A neighbour as the lab builds it: its config entry and what its router announces."""

    config: dict  # a peering.neighbours entry
    announces: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.config["name"]


def peering_section(neighbours: list[NeighbourSpec], workdir: Path, scheme: str, **extra) -> dict:
    return {
        "asn": OUR_ASN,
        "router_id": LAN + "1",
        "edge_switch": "1",
        "gobgp": {
            "target": f"unix:{workdir / 'gobgp.sock'}",
            "hold_s": 9,
            "keepalive_s": 3,
            "listen_port": 179,
            "passive": True,
        },
        "scheme": scheme,
        "neighbours": [n.config for n in neighbours],
        "store_path": str(workdir / "peering.sqlite"),
        "decisions_path": str(workdir / "peering-decisions.jsonl"),
        **extra,
    }


def _prepare(host) -> None:
    # TCP through the userspace datapath needs TX checksum offload off (LAB.md).
    for intf in host.intfList():
        host.cmd(f"ethtool -K {intf.name} tx off >/dev/null 2>&1")
    host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")


def wait_for(what: str, check, timeout_s: float, every_s: float = 0.25):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(every_s)
    raise LabError(f"{what}: not within {timeout_s:g} s")


class PeeringNetwork:
    def __init__(self, neighbours: list[NeighbourSpec], workdir: Path, config: dict):
        self.neighbours = neighbours
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        workdir.chmod(0o755)  # FRR's daemons run as frr: they must reach their run dirs
        self.controller = ControllerProcess(config, workdir)
        self.net = None
        self.speaker: GoBgpDaemon | None = None
        self.routers: dict[str, FrrRouter] = {}
        self.client = None
        self._revalidator: tuple[str | None] | None = None     # (the value before start,) once set

    def start(self, routers: bool = True) -> "PeeringNetwork":
        """Everything up; ``routers`` False leaves the neighbours' routers to ``start_router``."""
        from mininet.link import TCLink
        from mininet.log import lg, setLogLevel

        from apps.peering.client import PeeringClient
        from topologies.mininet_topo import EdgeTopo

        try:
            self._revalidator = (max_revalidator(str(REVALIDATE_MS)),)
            self.controller.start()
            setLogLevel("warning")
            lg.addFilter(_quiet_htb)
            topo = EdgeTopo(
                neighbours=[(n.name, n.config["address"], n.config["capacity_mbps"]) for n in self.neighbours]
            )
            self.net = start_mininet(topo, self.controller.of_port, TCLink)
            for host in self.net.hosts:
                _prepare(host)
            for n in self.neighbours:
                host = self.net.get(n.name)
                host.cmd(f"ip route add local {DESTINATIONS} dev lo")  # every destination is "here"
                host.cmd("sysctl -qw net.ipv4.conf.all.rp_filter=0")
            self.speaker = GoBgpDaemon(
                self.workdir / "gobgp", self.net.get("bgp").popen, socket_path=self.workdir / "gobgp.sock"
            ).start()
            for n in self.neighbours if routers else ():
                self.start_router(n)
            self.client = PeeringClient(self.controller.grpc_address)
        except BaseException:
            self.stop()
            raise
        return self

    def start_router(self, n: NeighbourSpec) -> FrrRouter:
        router = FrrRouter(
            n.name,
            self.workdir / f"frr-{n.name}",
            self.net.get(n.name).popen,
            n.config["asn"],
            n.config["address"],
            [(LAN + "1", OUR_ASN)],
            n.announces,
            hold_s=9,
            keepalive_s=3,
        )
        self.routers[n.name] = router
        return router.start()

    def sessions(self) -> dict[str, object]:
        return {s.name: s for s in self.client.list()}

    def wait_established(self, name: str, prefixes: int, timeout_s: float = 40.0):
        return wait_for(
            f"{name}: session established with {prefixes} prefixes",
            lambda: (s := self.sessions().get(name)) is not None
            and s.state == peering_pb2.ESTABLISHED
            and s.prefixes >= prefixes
            and s,
            timeout_s,
        )

    def exit_intf(self, name: str) -> str:
        """The switch's interface toward a neighbour (its shaped link's qdisc)."""
        return self.net.get(name).connectionsTo(self.net.get("edge"))[0][1].name

    def neighbour_intf(self, name: str) -> str:
        return self.net.get(name).connectionsTo(self.net.get("edge"))[0][0].name

    def kill(self, name: str) -> float:
        """The neighbour dies: its bgpd and zebra SIGKILLed and its link down; when."""
        at = time.time()
        self.routers[name].kill()
        self.net.get(name).cmd(f"ip link set {self.neighbour_intf(name)} down")
        return at

    def stop(self) -> float | None:
        keep = os.environ.get("FORESIGHT_KEEP_LAB") is not None
        if self.client is not None:
            self.client.close()
            self.client = None
        for router in self.routers.values():
            router.stop(remove=not keep)
        if self.speaker is not None:
            self.speaker.stop(remove=not keep)
        try:
            if self.net is not None:
                try:
                    self.net.stop()
                finally:
                    self.net = None
        finally:
            if self._revalidator is not None:
                max_revalidator(self._revalidator[0])
                self._revalidator = None
        return self.controller.stop()

    def __enter__(self) -> "PeeringNetwork":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
