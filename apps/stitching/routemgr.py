"""foresight-routemgr: one site's route manager. It runs at the site (in the lab: in
the site's network namespace) and tells the controller, every ``--interval-s``:

- the virtual networks the site reaches: every port of ``br-int`` whose OVSDB
  interface record carries ``external_ids`` ``foresight-vnid``, ``foresight-tenant``,
  ``attached-mac`` and ``foresight-ip`` (read with Open vSwitch's own IDL, as OVN's
  controller reads ``iface-id``);
- per underlay plane: the site's address on it (the plane bridge's), whether its
  uplink is up (OVSDB ``link_state``), the bandwidth left (configured capacity less
  what the uplink sent since the last advertisement) and the round trip to every
  other site on that plane (one ping each, all at once; the controller's answer
  says where the other sites are);
- with ``--state-dir``, its WireGuard public key and the encrypted tunnels it keeps
  for the controller's encrypted stitches (``Tunnels``).

    python -m apps.stitching.routemgr --site a --db unix:/run/.../db.sock \\
        --controller unix:/run/.../grpc.sock --plane 1:br-phy1:up1:50:1 --plane 2:br-phy2:up2:50:2

``--plane N:BRIDGE:UPLINK:MBPS:COST``. An unreachable controller is retried every
interval and logged once per outage; SIGTERM ends it.
"""

from __future__ import annotations

import argparse
import collections
import ipaddress
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import grpc

from controller.telemetry import CounterDeltas
from proto import stitching_pb2 as pb
from proto import stitching_pb2_grpc as pb_grpc

with warnings.catch_warnings():
    warnings.simplefilter("ignore")          # ovs.poller looks for eventlet, which warns
    import ovs.db.idl
    import ovs.poller

LOG = logging.getLogger("foresight.routemgr")

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
INTEGRATION_BRIDGE = "br-int"
RTT_RE = re.compile(r"time=([0-9.]+) ms")
PROBE_WINDOW = 10               # probe loss is over the last this many probes per peer and plane


@dataclass(frozen=True)
class PlaneConfig:
    plane: int
    bridge: str
    uplink: str
    capacity_mbps: float
    cost: float

    @classmethod
    def parse(cls, text: str) -> "PlaneConfig":
        parts = text.split(":")
        if len(parts) != 5:
            raise ValueError(f"--plane {text!r}: want N:BRIDGE:UPLINK:MBPS:COST")
        try:
            plane, mbps, cost = int(parts[0]), float(parts[3]), float(parts[4])
        except ValueError:
            raise ValueError(f"--plane {text!r}: N, MBPS and COST must be numbers") from None
        if plane < 1 or mbps <= 0 or cost < 0:
            raise ValueError(f"--plane {text!r}: N >= 1, MBPS > 0, COST >= 0")
        return cls(plane, parts[1], parts[2], mbps, cost)


class SiteDatabase:
    """The site's OVSDB, kept current by the IDL."""

    def __init__(self, remote: str):
        helper = ovs.db.idl.SchemaHelper(location=SCHEMA)
        helper.register_columns("Bridge", ["name", "datapath_id", "ports"])
        helper.register_columns("Port", ["name", "interfaces"])
        helper.register_columns("Interface", ["name", "external_ids", "link_state"])
        self.idl = ovs.db.idl.Idl(remote, helper)

    def refresh(self, timeout_s: float = 5.0) -> None:
        """Take what the database sent; wait (up to timeout_s) for the first contents."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.idl.run()
            if self.idl.has_ever_connected() or time.monotonic() > deadline:
                return
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(100)
            poller.block()

    def _rows(self, table: str):
        return list(self.idl.tables[table].rows.values())

    def dp_id(self) -> int | None:
        for bridge in self._rows("Bridge"):
            if bridge.name == INTEGRATION_BRIDGE and bridge.datapath_id:
                return int(bridge.datapath_id[0], 16)
        return None

    def hosts(self) -> list[pb.AdvertisedHost]:
        out = []
        for iface in self._rows("Interface"):
            ids = iface.external_ids
            try:
                vnid = int(ids.get("foresight-vnid", ""))
                mac, ip, tenant = ids["attached-mac"], ids["foresight-ip"], ids["foresight-tenant"]
                ipaddress.IPv4Address(ip)
            except (KeyError, ValueError):
                continue                    # not a host port, or not fully described
            out.append(pb.AdvertisedHost(name=iface.name, mac=mac.lower(), ip=ip, vnid=vnid, tenant=tenant))
        return sorted(out, key=lambda h: h.name)

    def link_up(self, name: str) -> bool:
        for iface in self._rows("Interface"):
            if iface.name == name:
                return bool(iface.link_state) and iface.link_state[0] == "up"
        return False


def _address(dev: str) -> str:
    out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", dev], capture_output=True, text=True)
    try:
        for link in json.loads(out.stdout or "[]"):
            for info in link.get("addr_info", []):
                return info["local"]
    except (ValueError, KeyError):
        pass
    return ""


def _tx_bytes(dev: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{dev}/statistics/tx_bytes").read_text())
    except (OSError, ValueError):
        return 0


def probe(targets: list[tuple[str, int, str]], timeout_s: float = 0.5) -> dict[tuple[str, int], float]:
    """One ping to each (site, plane, address) at once; {(site, plane): rtt ms} of those that answered."""
    procs = {(site, plane): subprocess.Popen(["ping", "-n", "-c1", f"-W{max(1, round(timeout_s))}", address],
                                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for site, plane, address in targets}
    out = {}
    for key, proc in procs.items():
        try:
            stdout, _ = proc.communicate(timeout=timeout_s + 2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            continue
        match = RTT_RE.search(stdout or "")
        if proc.returncode == 0 and match:
            out[key] = float(match.group(1))
    return out


VXLAN_MTU = 1370                # inside WireGuard on a 1500-byte underlay (LAB.md)
WG_MTU = 1420


def _cmd(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=20)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc


class Tunnels:
    """The site's encrypted tunnels, kept as the controller orders: per encrypted
    stitch a WireGuard link to the peer site (``wireguard-go``, a child process) and a
    kernel VXLAN device over it, added to br-int (LAB.md: Open vSwitch's own tunnels
    cannot leave through a WireGuard device). The private key stays in ``state_dir``.

    An ``ovs-ipsec`` order is an Open vSwitch VXLAN port with the stitch's key,
    endpoints and pre-shared key (``options:psk``), which ovs-monitor-ipsec turns into
    IPsec. It is only built where that can work: br-int on the kernel datapath and
    ovs-monitor-ipsec running for this OVSDB; elsewhere the order is refused and the
    reason goes back to the controller (``errors``), so the stitch carries nothing
    rather than plaintext."""

    def __init__(self, db: str, state_dir: Path):
        self.db = db
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        key = state_dir / "wg.key"
        if not key.exists():
            key.write_text(_cmd("wg", "genkey").stdout)
            key.chmod(0o600)
        self.key_path = key
        self.public_key = subprocess.run(["wg", "pubkey"], input=key.read_text(), capture_output=True,
                                         text=True, check=True).stdout.strip()
        self.kept: dict[str, pb.EncryptedTunnel] = {}
        self.procs: dict[str, subprocess.Popen] = {}
        self.errors: dict[str, str] = {}            # stitch id -> why its tunnel was not built

    def ports(self) -> list[pb.TunnelPort]:
        return [pb.TunnelPort(stitch_id=i, port=t.port) for i, t in sorted(self.kept.items())]

    def ipsec_problems(self) -> list[str]:
        """What keeps Open vSwitch IPsec from working at this site."""
        problems = []
        kind = subprocess.run(["ovs-vsctl", f"--db={self.db}", "get", "bridge", INTEGRATION_BRIDGE,
                               "datapath_type"],
                              capture_output=True, text=True).stdout.strip().strip('"')
        if kind not in ("", "system"):
            problems.append(f"{INTEGRATION_BRIDGE} is on the {kind} datapath "
                            f"(OVS IPsec needs the kernel one)")
        rundir = Path(self.db.removeprefix("unix:")).parent
        pidfile = rundir / "ovs-monitor-ipsec.pid"
        try:
            os.kill(int(pidfile.read_text().strip()), 0)
        except (OSError, ValueError):
            problems.append(f"ovs-monitor-ipsec is not running ({pidfile})")
        return problems

    def apply(self, orders) -> None:
        wanted = {t.stitch_id: t for t in orders}
        self.errors = {i: e for i, e in self.errors.items() if i in wanted}
        for stitch_id in [i for i in self.kept if i not in wanted]:
            self._remove(self.kept.pop(stitch_id))
        for stitch_id, order in wanted.items():
            if self.kept.get(stitch_id) == order:
                continue
            old = self.kept.pop(stitch_id, None)
            said = self.errors.get(stitch_id)
            try:
                if (old is not None
                        and (old.interface, old.port, old.vni) != (order.interface, order.port, order.vni)):
                    self._remove(old)
                    old = None
                self._ensure(order, old)
                self.kept[stitch_id] = order
                LOG.info("encrypted tunnel for %s: %s over %s to %s (%s)", stitch_id, order.port,
                         order.interface, order.peer_site, order.peer_endpoint)
            except (RuntimeError, OSError) as err:
                self.errors[stitch_id] = str(err)
                if said != str(err):                    # once per reason, not every second
                    LOG.error("encrypted tunnel for %s not built: %s", stitch_id, err)

    def _ensure(self, t, old) -> None:
        if t.mode == "ovs-ipsec":
            problems = self.ipsec_problems()
            if problems:
                self.errors[t.stitch_id] = "; ".join(problems)
                raise RuntimeError(self.errors[t.stitch_id])
            _cmd("ovs-vsctl", f"--db={self.db}", "--may-exist", "add-port", INTEGRATION_BRIDGE, t.port,
                 "--", "set", "interface", t.port, "type=vxlan", f"options:remote_ip={t.peer_endpoint}",
                 f"options:local_ip={t.local_endpoint}", f"options:key={t.vni}", f"options:psk={t.psk}")
            self.errors.pop(t.stitch_id, None)
            return
        dev = Path("/sys/class/net") / t.interface
        if t.interface not in self.procs or self.procs[t.interface].poll() is not None:
            self.procs[t.interface] = subprocess.Popen(["wireguard-go", "-f", t.interface],
                                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 5
            while not dev.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"wireguard-go did not create {t.interface}")
                time.sleep(0.05)
        if old is not None and old.peer_public_key != t.peer_public_key:
            _cmd("wg", "set", t.interface, "peer", old.peer_public_key, "remove")
        _cmd("wg", "set", t.interface, "private-key", str(self.key_path), "listen-port", str(t.listen_port),
             "peer", t.peer_public_key, "endpoint", f"{t.peer_endpoint}:{t.listen_port}",
             "allowed-ips", f"{t.peer_inner_address}/32", "persistent-keepalive", "1")
        _cmd("ip", "addr", "replace", t.inner_address, "dev", t.interface)
        _cmd("ip", "link", "set", t.interface, "mtu", str(WG_MTU), "up")
        if not (Path("/sys/class/net") / t.port).exists():
            _cmd("ip", "link", "add", t.port, "type", "vxlan", "id", str(t.vni),
                 "local", t.inner_address.split("/")[0], "remote", t.peer_inner_address, "dstport", "4789",
                 "dev", t.interface)
        _cmd("ip", "link", "set", t.port, "mtu", str(VXLAN_MTU), "up")
        _cmd("ovs-vsctl", f"--db={self.db}", "--may-exist", "add-port", INTEGRATION_BRIDGE, t.port)

    def _remove(self, t) -> None:
        if t.mode == "ovs-ipsec":
            subprocess.run(["ovs-vsctl", f"--db={self.db}", "--if-exists", "del-port", INTEGRATION_BRIDGE,
                            t.port],
                           capture_output=True)
            LOG.info("encrypted tunnel for %s removed", t.stitch_id)
            return
        for args in (("ovs-vsctl", f"--db={self.db}", "--if-exists", "del-port", INTEGRATION_BRIDGE, t.port),
                     ("ip", "link", "del", t.port), ("ip", "link", "del", t.interface)):
            subprocess.run(list(args), capture_output=True)
        proc = self.procs.pop(t.interface, None)
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        LOG.info("encrypted tunnel for %s removed", t.stitch_id)

    def close(self) -> None:
        for t in list(self.kept.values()):
            self._remove(t)
        self.kept.clear()


def _neighbour(address: str) -> str:
    """The kernel's MAC for ``address`` ("" if unknown)."""
    out = subprocess.run(["ip", "-j", "neigh", "show", address], capture_output=True, text=True)
    try:
        for entry in json.loads(out.stdout or "[]"):
            if entry.get("lladdr") and "FAILED" not in entry.get("state", []):
                return entry["lladdr"]
    except ValueError:
        pass
    return ""


class RouteManager:
    def __init__(self, site: str, db: SiteDatabase, stub, planes: list[PlaneConfig], interval_s: float = 1.0,
                 tunnels: Tunnels | None = None, appctl: str = ""):
        self.site = site
        self.appctl = appctl
        self._pinned: dict[tuple[int, str], str] = {}
        self.tunnels = tunnels
        self.db = db
        self.stub = stub
        self.planes = planes
        self.interval_s = interval_s
        self.peers: list[tuple[str, int, str]] = []
        self.rtt: dict[tuple[str, int], float] = {}
        # (site, plane) -> the last PROBE_WINDOW probes, True if answered
        self.answered: dict[tuple[str, int], collections.deque] = {}
        self._tx = CounterDeltas()
        self._used_mbps: dict[int, float] = {}
        self._stop = threading.Event()
        self._failing = False

    def advertisement(self, now: float) -> pb.Advertisement:
        self.db.refresh()
        planes = []
        for p in self.planes:
            rate = self._tx.read(p.plane, now, (_tx_bytes(p.uplink),)).mbps()
            if rate is not None:
                self._used_mbps[p.plane] = rate
            rtt = {site: ms for (site, plane), ms in self.rtt.items() if plane == p.plane}
            loss = {site: 1.0 - sum(seen) / len(seen) for (site, plane), seen in self.answered.items()
                    if plane == p.plane and seen}
            planes.append(pb.PlaneStatus(plane=p.plane, address=_address(p.bridge),
                                         up=self.db.link_up(p.uplink),
                                         available_mbps=max(0.0, p.capacity_mbps
                                                            - self._used_mbps.get(p.plane, 0.0)),
                                         cost=p.cost, rtt_ms=rtt, loss=loss))
        ad = pb.Advertisement(site=self.site, dp_id=self.db.dp_id() or 0, hosts=self.db.hosts(),
                              planes=planes)
        if self.tunnels is not None:
            ad.wg_public_key = self.tunnels.public_key
            ad.tunnels.extend(self.tunnels.ports())
            ad.tunnel_errors.extend(pb.TunnelError(stitch_id=i, reason=r)
                                    for i, r in sorted(self.tunnels.errors.items()))
        return ad

    def step(self) -> bool:
        """Advertise once (and measure for the next); True if the controller took it."""
        ad = self.advertisement(time.time())
        try:
            answer = self.stub.Advertise(ad, timeout=max(1.0, self.interval_s))
        except grpc.RpcError as err:
            if not self._failing or err.code() == grpc.StatusCode.INVALID_ARGUMENT:
                LOG.warning("site %s: advertisement not taken: %s: %s", self.site, err.code().name,
                            err.details())
            self._failing = True
            return False
        if self._failing:
            LOG.info("site %s: the controller takes advertisements again", self.site)
        self._failing = False
        self.peers = [(p.site, p.plane, p.address) for p in answer.peers]
        if self.tunnels is not None:
            before = (self.tunnels.ports(), dict(self.tunnels.errors))
            self.tunnels.apply(answer.tunnels)
            # say so at once, not an interval later
            if (self.tunnels.ports(), self.tunnels.errors) != before:
                self.stub.Advertise(self.advertisement(time.time()), timeout=max(1.0, self.interval_s))
        self.rtt = probe(self.peers)
        for site, plane, _ in self.peers:
            self.answered.setdefault((site, plane), collections.deque(maxlen=PROBE_WINDOW)).append(
                (site, plane) in self.rtt)
        self._pin_neighbours()
        return True

    def _pin_neighbours(self) -> None:
        """Open vSwitch's own tunnels drop a packet whose underlay next hop it has not
        resolved yet (the first of a new stitch): tell it each peer's MAC, which the
        probes just made the kernel learn (``tnl/neigh/set``, LAB.md)."""
        if not self.appctl:
            return
        bridges = {p.plane: p.bridge for p in self.planes}
        for site, plane, address in self.peers:
            if (site, plane) not in self.rtt or plane not in bridges:
                continue
            mac = _neighbour(address)
            if mac and self._pinned.get((plane, address)) != mac:
                done = subprocess.run(["ovs-appctl", "-t", self.appctl, "tnl/neigh/set", bridges[plane],
                                       address, mac],
                                      capture_output=True, text=True)
                if done.returncode == 0:
                    self._pinned[(plane, address)] = mac
                else:
                    LOG.warning("site %s: tnl/neigh/set %s %s failed: %s", self.site, address, mac,
                                done.stderr.strip())

    def run(self) -> None:
        LOG.info("site %s: advertising every %g s", self.site, self.interval_s)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.step()
            except Exception:  # noqa: BLE001 - keep advertising through one bad step
                LOG.exception("site %s: advertising failed", self.site)
            self._stop.wait(max(0.0, self.interval_s - (time.monotonic() - started)))

    def stop(self) -> None:
        self._stop.set()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--site", required=True)
    ap.add_argument("--db", required=True, help="the site's OVSDB, e.g. unix:/run/foresight/x/a/db.sock")
    ap.add_argument("--controller", required=True, help="gRPC target, e.g. unix:/run/foresight/x/grpc.sock")
    ap.add_argument("--plane", action="append", default=[],
                    help="N:BRIDGE:UPLINK:MBPS:COST (repeat per plane)")
    ap.add_argument("--interval-s", type=float, default=1.0)
    ap.add_argument("--state-dir", default="", help="keep the WireGuard key here; '' : no encrypted tunnels")
    ap.add_argument("--appctl", default="", help="ovs-vswitchd's control socket, to pin tunnel neighbours")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        planes = [PlaneConfig.parse(p) for p in args.plane]
    except ValueError as err:
        ap.error(str(err))
    if args.interval_s <= 0:
        ap.error("--interval-s must be > 0")
    channel = grpc.insecure_channel(args.controller)
    tunnels = Tunnels(args.db, Path(args.state_dir)) if args.state_dir else None
    manager = RouteManager(args.site, SiteDatabase(args.db), pb_grpc.StitchingStub(channel), planes,
                           args.interval_s, tunnels, args.appctl)
    signal.signal(signal.SIGTERM, lambda *_: manager.stop())
    try:
        manager.run()
    finally:
        if tunnels is not None:
            tunnels.close()
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
