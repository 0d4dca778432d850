"""Several substrate sites for stitching: each site is its own Open vSwitch (its own
ovsdb-server and ovs-vswitchd) in its own network namespace, the sites are joined by
an underlay of two independent planes, and hosts in virtual networks hang off each
site's switch. The recipe is LAB.md's ("Several sites, each with its own switch
instance, tunnels between them").

    net = SitesNetwork(default_spec())
    try:
        net.build(of_port)                       # underlay, sites, hosts
        net.ping("a-h1", "b-h1")                 # False until a stitch joins them
        net.set_plane("a", 1, up=False)          # cut site a's plane-1 uplink
    finally:
        net.stop()                               # every process, namespace and file

The builder starts no controller: it is given the controller's OpenFlow port (and,
for route managers, its gRPC socket); the lab around it starts the controller and
waits for switches and advertisements.

Per site ``s`` (namespace ``<tag>-s``, run directory ``/run/foresight/<tag>/s``):

- ``br-int``: the site's OpenFlow 1.3 switch (userspace datapath, secure fail mode,
  dp_id from the spec), controlled by the controller through a unix socket in
  the run directory that ``socat`` relays to the controller's TCP port (a namespace
  cannot reach the root namespace's loopback). Host ports carry the host's virtual
  network in OVSDB (``external_ids:foresight-vnid`` and ``foresight-tenant``, as OVN
  keeps ``iface-id``), and one VXLAN port ``vxlan`` takes its tunnel source,
  destination and key from each flow (``local_ip=flow remote_ip=flow key=flow``),
  so the controller picks the underlay path and the VNI per flow.
- ``br-phy1``, ``br-phy2``: one underlay bridge per plane (plain MAC learning, no
  controller) holding the site's uplink ``up1``/``up2``, with the site's address on
  that plane, ``10.10<plane>.0.<n>/24``, on the bridge's own interface: Open vSwitch
  sends tunnel traffic out of the bridge that owns the route to the destination.

The underlay is one namespace (``<tag>-u``) with a Linux bridge per plane, ``pl1``
and ``pl2``; site ``s``'s uplink ends there as ``s1``/``s2``, optionally shaped to
``plane_mbps`` (HTB both ways). Two sites therefore have two disjoint underlay paths.
``arp_ignore=1`` in every site namespace: without it the kernel answers ARP on the
OVS-owned uplink and the tunnel black-holes (LAB.md).

Every process the lab starts is a child it stops by handle; namespaces, run
directories and nothing else are removed on ``stop()``, also after a failed start.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from topologies.processes import LabError, terminate

ROOT = Path(__file__).resolve().parents[1]      # route managers run from the repository
PLANES = (1, 2)
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
RUN_ROOT = Path("/run/foresight")
HOST_MTU = 1450                 # VXLAN adds 50 bytes on a 1500-byte underlay
VXLAN_PORT = "vxlan"
DP_ID_BASE = 0x5100             # site i's br-int is dp_id DP_ID_BASE + i (1-based)


@dataclass(frozen=True)
class SiteHost:
    name: str                   # also the switch port's name: at most 15 characters
    site: str
    vnid: int                   # the virtual network it belongs to
    tenant: str
    ip: str                     # with prefix, e.g. 10.60.1.1/16
    mac: str

    @property
    def address(self) -> str:
        return self.ip.split("/")[0]


@dataclass(frozen=True)
class SitesSpec:
    sites: tuple[str, ...]
    hosts: tuple[SiteHost, ...]
    plane_mbps: float | None = None      # shape every uplink to this rate; None: unshaped

    def __post_init__(self):
        problems = []
        for s in self.sites:
            if not s.isalnum() or not s.islower() or len(s) > 4:
                problems.append(f"site name {s!r}: 1-4 lower-case letters or digits")
        if len(set(self.sites)) != len(self.sites):
            problems.append("site names repeat")
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            problems.append("host names repeat")
        for h in self.hosts:
            if h.site not in self.sites:
                problems.append(f"host {h.name}: unknown site {h.site!r}")
            if not 0 < len(h.name) <= 15 or h.name in ("br-int", VXLAN_PORT) or "/" in h.name:
                problems.append(f"host {h.name!r}: not a usable port name (1-15 characters)")
            try:
                ipaddress.ip_interface(h.ip)
            except ValueError as err:
                problems.append(f"host {h.name}: {err}")
            if not 0 < h.vnid < 2**24:
                problems.append(f"host {h.name}: vnid {h.vnid} outside 1..16777215")
        if problems:
            raise ValueError("; ".join(problems))

    def dp_id(self, site: str) -> int:
        return DP_ID_BASE + self.sites.index(site) + 1

    def underlay_ip(self, site: str, plane: int) -> str:
        return f"10.10{plane}.0.{self.sites.index(site) + 1}"

    def controller_topology(self) -> dict:
        return {"switches": [{"dp_id": self.dp_id(s), "name": f"site-{s}", "site": s} for s in self.sites],
                "links": []}


def default_spec(plane_mbps: float | None = 50.0) -> SitesSpec:
    """Three sites; tenant acme has VN 100 at site a and VN 200 at site b (one address
    plan, so a segment stitch can make them one L2 segment); site a also holds VN 101
    of acme and site c VN 300 of another tenant."""
    hosts = (
        SiteHost("a-h1", "a", 100, "acme", "10.60.1.1/16", "02:00:00:0a:01:01"),
        SiteHost("a-h2", "a", 100, "acme", "10.60.1.2/16", "02:00:00:0a:01:02"),
        SiteHost("a-h3", "a", 101, "acme", "10.60.1.3/16", "02:00:00:0a:01:03"),
        SiteHost("b-h1", "b", 200, "acme", "10.60.2.1/16", "02:00:00:0b:02:01"),
        SiteHost("b-h2", "b", 200, "acme", "10.60.2.2/16", "02:00:00:0b:02:02"),
        SiteHost("c-h1", "c", 300, "globex", "10.60.3.1/16", "02:00:00:0c:03:01"),
    )
    return SitesSpec(("a", "b", "c"), hosts, plane_mbps)


def _run(*args: str, check: bool = True, timeout_s: float = 20.0) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout_s)
    if check and proc.returncode != 0:
        raise LabError(f"{' '.join(args)}: {(proc.stderr or proc.stdout).strip()[:400]}")
    return proc


def _wait_for(path: Path, proc: subprocess.Popen, what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if proc.poll() is not None:
            raise LabError(f"{what} exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise LabError(f"{what} did not create {path} in {timeout_s:g} s")
        time.sleep(0.05)


def _shape(ns: str, dev: str, mbps: float) -> None:
    _run("ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb",
         "default", "1")
    _run("ip", "netns", "exec", ns, "tc", "class", "replace", "dev", dev, "parent", "1:", "classid", "1:1",
         "htb", "rate", f"{mbps:g}mbit", "ceil", f"{mbps:g}mbit")


class SiteSwitch:
    """One site's Open vSwitch instance in its own namespace."""

    def __init__(self, spec: SitesSpec, name: str, tag: str, of_port: int):
        self.spec = spec
        self.name = name
        self.ns = f"{tag}-{name}"
        self.rundir = RUN_ROOT / tag / name
        self.of_port = of_port
        self.procs: dict[str, subprocess.Popen] = {}

    @property
    def dp_id(self) -> int:
        return self.spec.dp_id(self.name)

    def _env(self) -> dict:
        d = str(self.rundir)
        return dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d)

    def vsctl(self, *args: str) -> str:
        return _run("ovs-vsctl", f"--db=unix:{self.rundir / 'db.sock'}", "--timeout=10", *args).stdout

    def ofctl(self, cmd: str, *rest: str, options: tuple[str, ...] = ()) -> str:
        """ovs-ofctl on br-int, e.g. ``ofctl("dump-flows", options=("--no-stats",))``."""
        return _run("ovs-ofctl", "-O", "OpenFlow13", *options, cmd, f"unix:{self.rundir / 'br-int.mgmt'}",
                    *rest).stdout

    def appctl(self, *args: str) -> str:
        return _run("ovs-appctl", "-t", str(self.rundir / "ovs-vswitchd.ctl"), *args).stdout

    def exec(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return _run("ip", "netns", "exec", self.ns, *args, check=check)

    def start(self) -> "SiteSwitch":
        self.rundir.mkdir(parents=True, exist_ok=True)
        _run("ip", "netns", "add", self.ns)
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv6.conf.all.disable_ipv6=1",
                  "net.ipv6.conf.default.disable_ipv6=1")
        db = self.rundir / "conf.db"
        _run("ovsdb-tool", "create", str(db), SCHEMA)
        log = open(self.rundir / "ovs.log", "ab")
        try:
            self.procs["ovsdb-server"] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "ovsdb-server", str(db),
                 f"--remote=punix:{self.rundir / 'db.sock'}",
                 f"--unixctl={self.rundir / 'ovsdb-server.ctl'}"],
                stdout=log, stderr=subprocess.STDOUT, env=self._env())
            _wait_for(self.rundir / "db.sock", self.procs["ovsdb-server"], f"site {self.name}: ovsdb-server")
            self.vsctl("--no-wait", "init")
            self.procs["ovs-vswitchd"] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "ovs-vswitchd", f"unix:{self.rundir / 'db.sock'}",
                 f"--unixctl={self.rundir / 'ovs-vswitchd.ctl'}"],
                stdout=log, stderr=subprocess.STDOUT, env=self._env())
            _wait_for(self.rundir / "ovs-vswitchd.ctl", self.procs["ovs-vswitchd"],
                      f"site {self.name}: ovs-vswitchd")
            # Relay the controller connection out of the namespace.
            self.procs["relay"] = subprocess.Popen(
                ["socat", f"UNIX-LISTEN:{self.rundir / 'ctl.sock'},fork,reuseaddr",
                 f"TCP:127.0.0.1:{self.of_port}"], stdout=log, stderr=subprocess.STDOUT)
            _wait_for(self.rundir / "ctl.sock", self.procs["relay"], f"site {self.name}: controller relay")
        finally:
            log.close()
        # The controller first: setting it later wiped the bridge's flows (LAB.md).
        self.vsctl("add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
                   "protocols=OpenFlow13", "fail-mode=secure", f"other-config:datapath-id={self.dp_id:016x}",
                   "--", "set-controller", "br-int", f"unix:{self.rundir / 'ctl.sock'}")
        self.vsctl("add-port", "br-int", VXLAN_PORT, "--", "set", "interface", VXLAN_PORT, "type=vxlan",
                   "options:remote_ip=flow", "options:local_ip=flow", "options:key=flow")
        for plane in PLANES:
            br = f"br-phy{plane}"
            self.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")
        return self

    def attach_uplink(self, plane: int, mbps: float | None) -> None:
        """The plane's uplink (created by the underlay) into br-phy<plane>, with the
        site's address on that plane."""
        br, up = f"br-phy{plane}", f"up{plane}"
        self.exec("ip", "link", "set", up, "up")
        if mbps:
            _shape(self.ns, up, mbps)
        self.vsctl("add-port", br, up)
        self.exec("ip", "addr", "add", f"{self.spec.underlay_ip(self.name, plane)}/24", "dev", br)
        self.exec("ip", "link", "set", br, "up")

    def attach_host(self, host: SiteHost) -> None:
        self.exec("ip", "link", "set", host.name, "up")
        self.vsctl("add-port", "br-int", host.name, "--", "set", "interface", host.name,
                   f"external_ids:foresight-vnid={host.vnid}", f"external_ids:foresight-tenant={host.tenant}",
                   f'external_ids:attached-mac="{host.mac}"', f"external_ids:foresight-ip={host.address}")

    def start_route_manager(self, grpc_socket: Path, capacity_mbps: float, interval_s: float) -> None:
        """The site's route manager (apps.stitching.routemgr), in the site's namespace."""
        planes = [f"--plane={p}:br-phy{p}:up{p}:{capacity_mbps:g}:{p}" for p in PLANES]
        log = open(self.rundir / "routemgr.log", "ab")
        try:
            self.procs["routemgr"] = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, sys.executable, "-m", "apps.stitching.routemgr",
                 "--site", self.name,
                 "--db", f"unix:{self.rundir / 'db.sock'}", "--controller", f"unix:{grpc_socket}",
                 "--interval-s", f"{interval_s:g}", "--state-dir", str(self.rundir / "routemgr"),
                 "--appctl", str(self.rundir / "ovs-vswitchd.ctl"), *planes],
                stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        finally:
            log.close()

    def stop(self) -> None:
        for name in ("routemgr", "ovs-vswitchd", "ovsdb-server", "relay"):
            terminate(self.procs.pop(name, None), timeout_s=5.0)
        # Anything else still running in the namespace (a route manager that had to be
        # killed leaves its wireguard-go children): by PID, then the namespace.
        pids = _run("ip", "netns", "pids", self.ns, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        _run("ip", "netns", "del", self.ns, check=False)


class SitesNetwork:
    """The sites of ``spec``, their underlay and their hosts, under one random tag
    (namespace and run-directory names), built for a controller on ``of_port``."""

    def __init__(self, spec: SitesSpec):
        self.spec = spec
        self.tag = "fs" + secrets.token_hex(2)
        self.rundir = RUN_ROOT / self.tag
        self.underlay = f"{self.tag}-u"
        self.sites: dict[str, SiteSwitch] = {}
        self.host_ns: dict[str, str] = {}
        self._namespaces: list[str] = []

    def host(self, name: str) -> SiteHost:
        return next(h for h in self.spec.hosts if h.name == name)

    # ---- up ------------------------------------------------------------------------

    def build(self, of_port: int) -> "SitesNetwork":
        """Underlay, site switches (their controller on ``of_port``) and hosts. What
        was built before a failure stays until ``stop()``, which the caller owes."""
        self.rundir.mkdir(parents=True, exist_ok=True)
        self._start_underlay()
        for name in self.spec.sites:
            site = SiteSwitch(self.spec, name, self.tag, of_port)
            self.sites[name] = site
            site.start()
            for plane in PLANES:
                _run("ip", "link", "add", f"up{plane}", "netns", site.ns, "type", "veth",
                     "peer", "name", f"{name}{plane}", "netns", self.underlay)
                _run("ip", "-n", self.underlay, "link", "set", f"{name}{plane}", "master", f"pl{plane}", "up")
                if self.spec.plane_mbps:
                    _shape(self.underlay, f"{name}{plane}", self.spec.plane_mbps)
                site.attach_uplink(plane, self.spec.plane_mbps)
        for host in self.spec.hosts:
            self._start_host(host)
        return self

    def start_route_managers(self, grpc_socket: Path, interval_s: float) -> None:
        """A route manager per site, reaching the controller's gRPC API on ``grpc_socket``."""
        for site in self.sites.values():
            site.start_route_manager(grpc_socket, self.spec.plane_mbps or 1000.0, interval_s)

    def _add_ns(self, ns: str) -> None:
        _run("ip", "netns", "add", ns)
        self._namespaces.append(ns)
        _run("ip", "-n", ns, "link", "set", "lo", "up")

    def _start_underlay(self) -> None:
        self._add_ns(self.underlay)
        for plane in PLANES:
            _run("ip", "-n", self.underlay, "link", "add", f"pl{plane}", "type", "bridge")
            _run("ip", "-n", self.underlay, "link", "set", f"pl{plane}", "up")

    def _start_host(self, host: SiteHost) -> None:
        ns = f"{self.tag}-{host.name}"
        self._add_ns(ns)
        self.host_ns[host.name] = ns
        site = self.sites[host.site]
        _run("ip", "link", "add", "eth0", "netns", ns, "type", "veth",
             "peer", "name", host.name, "netns", site.ns)
        for cmd in (("ip", "link", "set", "eth0", "address", host.mac, "mtu", str(HOST_MTU), "up"),
                    ("ip", "addr", "add", host.ip, "dev", "eth0"),
                    ("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")):
            _run("ip", "netns", "exec", ns, *cmd)
        # The userspace datapath does not complete offloaded checksums (LAB.md).
        _run("ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off", check=False)
        site.attach_host(host)

    # ---- using it ------------------------------------------------------------------

    def host_exec(self, host: str, *args: str, check: bool = False, timeout_s: float = 30.0):
        return _run("ip", "netns", "exec", self.host_ns[host], *args, check=check, timeout_s=timeout_s)

    def host_popen(self, host: str, args: list[str], **kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.host_ns[host], *args], **kwargs)

    def ping(self, src: str, dst: str, count: int = 1, timeout_s: float = 1.0) -> bool:
        out = self.host_exec(src, "ping", "-c", str(count), "-W", f"{timeout_s:g}", self.host(dst).address)
        return out.returncode == 0

    def iperf_udp(self, src: str, dst: str, mbps: float, seconds: float = 5.0) -> float:
        """Mbit/s ``dst`` received of ``mbps`` offered by ``src`` over UDP (iperf3 with
        1200-byte datagrams; both ends stopped by handle)."""
        server = self.host_popen(dst, ["iperf3", "-s", "-1", "--json", "-p", "5201"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(0.5)
            client = self.host_exec(src, "iperf3", "-u", "-b", f"{mbps:g}M", "-t", f"{seconds:g}",
                                    "-l", "1200", "-p", "5201", "-c", self.host(dst).address,
                                    timeout_s=seconds + 30)
            if client.returncode != 0:
                raise LabError(f"iperf3 {src} -> {dst}: {(client.stderr or client.stdout).strip()[-300:]}")
            out, _ = server.communicate(timeout=30)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()
        end = json.loads(out)["end"]
        return end.get("sum_received", end["sum"])["bits_per_second"] / 1e6     # iperf3 3.12: sum_received

    def capture(self, iface: str, bpf: str, seconds: float) -> list[str]:
        """The packet lines tcpdump prints for ``bpf`` on the underlay's ``iface``
        (a site's uplink end, e.g. "a1") over ``seconds``."""
        proc = subprocess.Popen(["ip", "netns", "exec", self.underlay, "timeout", f"{seconds:g}",
                                 "tcpdump", "-l", "-n", "-i", iface, bpf],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        out, _ = proc.communicate(timeout=seconds + 10)
        return [line for line in out.splitlines() if line.strip()]

    def set_plane(self, site: str, plane: int, up: bool) -> None:
        """Take site's uplink to ``plane`` down (or up) at the underlay end, as a cut
        cable between the site and that plane."""
        _run("ip", "-n", self.underlay, "link", "set", f"{site}{plane}", "up" if up else "down")

    # ---- down ----------------------------------------------------------------------

    def stop_sites(self) -> None:
        """Every process the sites run, then every namespace; the files stay."""
        for site in self.sites.values():
            site.stop()
        for ns in reversed(self._namespaces):
            _run("ip", "netns", "del", ns, check=False)
        self._namespaces.clear()

    def remove_files(self) -> None:
        shutil.rmtree(self.rundir, ignore_errors=True)
        try:
            RUN_ROOT.rmdir()            # only when no other lab uses it
        except OSError:
            pass

    def stop(self) -> None:
        self.stop_sites()
        self.remove_files()
