"""The staging copy's keeper: ``python -m labs.staging_copy SPEC`` (started by ``labs.staging``).

It owns the copy of the network a change is rehearsed on, in a process of its own so
that the copy goes whenever the production controller does (``labs.staging``'s
docstring says why). SPEC is a JSON file: the copy controller's ``config``, the
``stores`` to copy ({the copy's file: production's}), the ``topology`` with the Lab's
``bw_scale``, ``max_bw_mbps``, ``link_bw``, ``hosts_per_switch`` and the node name
``prefix``, and the ``workdir`` (``own_workdir``: remove it at the end).

1. Production's state files are copied with SQLite's online backup (a consistent
   snapshot of a file another process is writing).
2. The copy's controller (``ControllerProcess``) and its Mininet network
   (``Lab(prefix=...)``) start; discovery and host ports are waited for; every host
   pings once so the controller learns it, until the controller knows them all.
3. It answers one JSON request per line on stdin with one JSON line on stdout (the
   first line it writes is ``{"ready": {...}}`` or ``{"error": "..."}``):

   - ``{"op": "reach", "pairs": [[mac, mac], ...]}``: each source pings the
     destination's IP (three tries) -> ``{"results": [{src, dst, ok, detail}]}``;
   - ``{"op": "rate", "src": ip, "dst": ip, "receivers": [ip], "mbps": r, "seconds": s}``:
     ``labs/tm_peer.py`` sends UDP at ``r`` Mbit/s for ``s`` seconds from ``src`` to
     ``dst`` (a host or a slice's service VIP), the receivers count what arrives ->
     ``{"sent": bytes, "received": bytes}``;
   - ``{"op": "stop"}``: take the copy down and exit.

4. Everything is taken down by handle (probes, Mininet's own ``stop``, the
   controller's Popen) when asked, when stdin closes (the controller is gone), on
   SIGTERM, SIGINT or SIGHUP, and when its parent changes (the controller went while
   the copy was still coming up). Signals are held while Mininet builds: a network
   interrupted half-built would leave bridges its ``stop`` does not know of.

Its stdout carries the protocol only; what Mininet prints goes to stderr, the log.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from labs.lab import ROOT, Lab
from topologies.catalog import load

LOG = logging.getLogger("foresight.staging.copy")

PEER = ROOT / "labs" / "tm_peer.py"
UDP_PORT = 9099
LINGER_S = 0.3  # after the sender stops: datagrams still on their way
LEARN_TIMEOUT_S = 30.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_RECEIVED = re.compile(r"(\d+) received")


class Signals:
    """SIGTERM, SIGINT and SIGHUP end the keeper (``SystemExit``, so ``finally`` tears
    down), except while ``held()``: then the first one is kept and acted on after."""

    def __init__(self):
        self._held = False
        self._pending = 0

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on)

    def _on(self, signum, _frame) -> None:
        if self._held:
            self._pending = self._pending or signum
            return
        raise SystemExit(128 + signum)

    @contextmanager
    def held(self):
        self._held = True
        try:
            yield
        finally:
            self._held = False
            if self._pending:
                raise SystemExit(128 + self._pending)


def copy_sqlite(source: str, dest: Path) -> bool:
    """A consistent copy of a SQLite file in use; False when there is none to copy."""
    if not Path(source).is_file():
        LOG.warning("no state file %s to copy: the copy starts without it", source)
        return False
    src = sqlite3.connect(source)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    return True


class Keeper:
    def __init__(self, spec: dict):
        self.spec = spec
        self.workdir = Path(spec["workdir"])
        self.lab: Lab | None = None
        self.nodes: dict = {}  # host name -> Mininet host
        self.hosts: list[dict] = []  # [{name, mac, ip}] in address order
        self.by_mac: dict[str, dict] = {}
        self.by_ip: dict[str, dict] = {}
        self.procs: list[subprocess.Popen] = []
        self._down = False

    # ---- bringing it up ---------------------------------------------------------------------
    def start(self, signals: Signals) -> dict:
        t0 = time.perf_counter()
        s = self.spec
        for old in (self.workdir / "state", self.workdir / "copy"):
            shutil.rmtree(old, ignore_errors=True)  # a previous copy's files in a reused workdir
        (self.workdir / "state").mkdir(parents=True)
        copied = [dest for dest, source in s["stores"].items() if copy_sqlite(source, Path(dest))]
        topology = load(s["topology"])
        for a, b, capacity in s.get("capacities", ()):
            topology = topology.with_capacity(a, b, capacity)
        for a, b, capacity in s.get("spares", ()):
            topology = topology.with_spare(a, b, capacity)
        self.lab = Lab(
            topology,
            bw_scale=s["bw_scale"],
            max_bw_mbps=s["max_bw_mbps"],
            link_bw=s["link_bw"],
            controller_config=s["config"],
            workdir=self.workdir / "copy",
            hosts_per_switch=s["hosts_per_switch"],
            prefix=s["prefix"],
        )
        self.lab.start_controller()
        with signals.held():
            self.lab.start_network()
        self.lab.wait_discovery(timeout_s=90)
        self.lab.wait_edges()
        self._learn_hosts()
        deployed = self._deployed()
        ready = dict(
            grpc=self.lab.controller.grpc_address,
            controller_pid=self.lab.controller.proc.pid,
            keeper_pid=os.getpid(),
            prefix=s["prefix"],
            bridges=[sw.name for sw in self.lab.net.switches],
            hosts=self.hosts,
            deployed=deployed,
            copied=copied,
            bring_up_s=round(time.perf_counter() - t0, 2),
        )
        (self.workdir / "staging.json").write_text(json.dumps(ready, indent=1) + "\n")
        LOG.info("copy up in %.1f s: %s", ready["bring_up_s"], json.dumps(ready))
        return ready

    def _learn_hosts(self) -> None:
        """Every host speaks once (a ping) until the copy's controller knows them all."""
        nodes = sorted(self.lab.net.hosts, key=lambda h: ipaddress.IPv4Address(h.IP()))
        self.nodes = {h.name: h for h in nodes}
        self.hosts = [dict(name=h.name, mac=h.MAC().lower(), ip=h.IP()) for h in nodes]
        self.by_mac = {h["mac"]: h for h in self.hosts}
        self.by_ip = {h["ip"]: h for h in self.hosts}
        if len(nodes) < 2:
            return
        missing = set(self.by_mac)
        deadline = time.monotonic() + LEARN_TIMEOUT_S
        while missing:
            for h in nodes:
                if h.MAC().lower() in missing:
                    peer = nodes[1] if h is nodes[0] else nodes[0]
                    h.cmd(f"ping -c1 -W1 {peer.IP()} >/dev/null")
            known = {h.mac for h in self.lab.client.hosts() if h.ipv4}
            missing -= known
            if missing and time.monotonic() > deadline:
                raise TimeoutError(
                    f"the copy's controller did not learn {sorted(missing)} in {LEARN_TIMEOUT_S:g} s"
                )
            if missing:
                time.sleep(0.5)

    def _deployed(self) -> list[str]:
        """Changes the copy holds DEPLOYED (from production's provisioning state)."""
        from apps.provisioning.client import ProvisioningClient
        from proto import provisioning_pb2 as pb

        if "apps.provisioning.app:provider" not in self.spec["config"]["controller"].get("providers", []):
            return []
        with ProvisioningClient(self.lab.controller.grpc_address) as client:
            return sorted(c.id for c in client.changes(limit=1_000_000) if c.state == pb.DEPLOYED)

    # ---- requests ---------------------------------------------------------------------------
    def handle(self, request: dict) -> dict:
        op = request.get("op")
        if op == "reach":
            return self.reach(request["pairs"])
        if op == "rate":
            return self.rate(
                request["src"], request["dst"], request["receivers"], request["mbps"], request["seconds"]
            )
        raise ValueError(f"unknown op {op!r}")

    def _node(self, key: str, by: dict):
        host = by.get(key.lower())
        if host is None:
            raise ValueError(f"the copy has no host {key}")
        return self.nodes[host["name"]]

    def reach(self, pairs: list) -> dict:
        results = []
        for a, b in pairs:
            try:
                src, dst = self._node(a, self.by_mac), self._node(b, self.by_mac)
            except ValueError as err:
                results.append(dict(src=a, dst=b, ok=False, detail=str(err)))
                continue
            t0 = time.perf_counter()
            for tries in range(1, 4):
                m = _RECEIVED.search(src.cmd(f"ping -c1 -W1 {dst.IP()}"))
                if m and int(m.group(1)) > 0:
                    took = (time.perf_counter() - t0) * 1000
                    results.append(
                        dict(src=a, dst=b, ok=True, detail=f"reply in {took:.0f} ms (try {tries})")
                    )
                    break
            else:
                results.append(dict(src=a, dst=b, ok=False, detail=f"no reply from {dst.IP()} to 3 pings"))
        return {"results": results}

    def rate(self, src: str, dst: str, receivers: list[str], mbps: float, seconds: float) -> dict:
        t0 = time.perf_counter()
        client = self._node(src, self.by_ip)
        members = [self._node(ip, self.by_ip) for ip in receivers]
        recvs = []
        try:
            for m in members:
                recvs.append(
                    m.popen(
                        [sys.executable, str(PEER), "recv", "--port", str(UDP_PORT)],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                )
                self.procs.append(recvs[-1])
            # The client resolves the destination while the receivers start, so no
            # datagram waits for ARP (a service VIP's ARP the controller answers).
            client.cmd(f"ping -c1 -W1 {dst} >/dev/null")
            for p in recvs:
                line = p.stdout.readline().strip()
                if line != "receiving":
                    raise RuntimeError(f"a receiver did not start: {line or p.stderr.read()[-300:]}")
            ready_s = time.perf_counter() - t0
            plan = self.workdir / "rate-plan.json"
            plan.write_text(json.dumps({"port": UDP_PORT, "flows": {dst: [mbps]}}))
            sender = client.popen(
                [
                    sys.executable,
                    str(PEER),
                    "send",
                    "--plan",
                    str(plan),
                    "--start",
                    f"{time.time() + 0.3:.3f}",
                    "--step-s",
                    f"{seconds:g}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self.procs.append(sender)
            out, err = sender.communicate(timeout=seconds + 20)
            if sender.returncode != 0:
                raise RuntimeError(f"the sender failed: {err.strip()[-300:]}")
            sent = json.loads(out.strip().splitlines()[-1])["sent"][dst][0]
            time.sleep(LINGER_S)
            received = 0
            for p in recvs:
                out, _ = p.communicate(input="", timeout=10)  # closing stdin ends it
                got = json.loads(out.strip().splitlines()[-1])["received"]
                received += sum(n for by_interval in got.values() for n in by_interval.values())
            LOG.info(
                "rate %s -> %s at %g Mbit/s: ready in %.2f s, %.2f s in all",
                src,
                dst,
                mbps,
                ready_s,
                time.perf_counter() - t0,
            )
            return {"sent": sent, "received": received}
        finally:
            self._reap()

    def _reap(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs = []

    # ---- taking it down ---------------------------------------------------------------------
    def teardown(self) -> None:
        if self._down:
            return
        self._down = True
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                signal.signal(sig, signal.SIG_IGN)  # nothing interrupts the teardown
        t0 = time.perf_counter()
        try:
            self._reap()
        finally:
            if self.lab is not None:
                self.lab.stop()
        LOG.info("copy down in %.1f s", time.perf_counter() - t0)
        if self.spec.get("own_workdir") and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _watch_parent(ppid: int) -> None:
    """The controller gone (we were re-parented): end as on SIGTERM."""
    while os.getppid() == ppid:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _send(out, message: dict) -> None:
    try:
        out.write(json.dumps(message) + "\n")
        out.flush()
    except (OSError, ValueError):
        pass  # the controller is gone: stdin will close too


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m labs.staging_copy SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(args[0]).read_text())
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # stray prints (Mininet's) go to the log, not into the protocol
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    keeper = Keeper(spec)
    signals = Signals()
    signals.install()
    atexit.register(keeper.teardown)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        try:
            ready = keeper.start(signals)
        except Exception as err:  # noqa: BLE001 - reported to the controller, then torn down
            LOG.exception("the copy did not come up")
            _send(out, {"error": f"{type(err).__name__}: {err}"})
            return 1
        _send(out, {"ready": ready})
        for line in sys.stdin:
            request = json.loads(line)
            if request.get("op") == "stop":
                break
            try:
                reply = keeper.handle(request)
            except Exception as err:  # noqa: BLE001 - one failed probe is the controller's to judge
                LOG.exception("request %s failed", request.get("op"))
                reply = {"error": f"{type(err).__name__}: {err}"}
            _send(out, reply)
    finally:
        keeper.teardown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
