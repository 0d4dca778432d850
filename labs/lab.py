"""The lab: Open vSwitch, a Foresight controller process and a Mininet network
built from a catalogue topology, started together and always torn down together.

    with Lab("abilene") as lab:
        lab.wait_discovery()
        print(lab.net.pingAll())

Everything the lab starts it stops by handle: the controller by its Popen, the
bridges, links and host namespaces through Mininet's own ``stop()``. It never runs
``mn -c`` (that would delete bridges that are not ours). Needs root.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

import yaml

from controller.client import ControllerClient
from topologies.catalog import TopologySpec, load
from topologies.processes import LabError, ensure_ovs, terminate

LOG = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class StreamCollector(threading.Thread):
    """Collects every message of a gRPC server stream in the background (``events``)
    until ``stop()`` cancels it."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.events: list = []

    def run(self) -> None:
        try:
            for event in self.stream:
                self.events.append(event)
        except Exception:  # noqa: BLE001 - the stream ends with CANCELLED when we stop it
            pass

    def stop(self) -> None:
        self.stream.cancel()
        self.join(5)


def write_report(out: Path, name: str, text: str, report: dict) -> None:
    """``<out>/<name>.txt`` and ``.json``, and say where they went."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.txt").write_text(text + "\n")
    (out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nreport written to {out / (name + '.txt')} and {out / (name + '.json')}")


def start_mininet(topo, of_port: int, link=None):
    """A started Mininet network of ``topo``: userspace OVS switches speaking OpenFlow
    1.3 in secure fail mode (no forwarding without the controller on ``of_port``)."""
    from mininet.link import Link
    from mininet.net import Mininet
    from mininet.node import OVSSwitch, RemoteController

    switch = partial(OVSSwitch, datapath="user", protocols="OpenFlow13", failMode="secure")
    net = Mininet(topo=topo, switch=switch, link=link or Link, controller=None, autoSetMacs=False,
                  autoStaticArp=False, build=False, waitConnected=False)
    net.addController(RemoteController("c0", ip="127.0.0.1", port=of_port))
    net.build()
    net.start()
    return net


class _Child:
    """A Foresight process the lab starts with ``python -m MODULE ...`` (in the
    repository, logging to ``log_path``), ready once its gRPC client answers; ``stop``
    closes the client and ends it by handle (SIGTERM, then SIGKILL)."""

    what = "process"
    stop_timeout_s = 5.0
    log_path: Path
    proc: subprocess.Popen | None = None
    client = None

    def _launch(self, argv: list[str], client, ready_timeout_s: float, env: dict | None = None) -> None:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", *argv], stdout=log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, env=env)
        log.close()
        self.client = client
        try:
            self.client.wait_ready(timeout_s=ready_timeout_s, alive=lambda: self.proc.poll() is None)
        except TimeoutError as err:
            self.stop()
            raise LabError(f"{self.what} did not start: {err}; log: {self.log_tail()}") from None

    def stop(self, timeout_s: float | None = None) -> float | None:
        """SIGTERM, wait, SIGKILL if needed; return seconds it took to exit."""
        if self.client is not None:
            self.client.close()
            self.client = None
        return terminate(self.proc, self.stop_timeout_s if timeout_s is None else timeout_s)

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


class ControllerProcess(_Child):
    """foresight-controller as a child process, on free ports, logging to a file."""

    what = "controller"

    def __init__(self, config: dict, workdir: Path):
        self.workdir = workdir
        self.of_port = free_port()
        self.grpc_port = free_port()
        self.metrics_port = free_port()
        ctl = config.setdefault("controller", {})
        ctl.setdefault("openflow", {})["port"] = self.of_port
        ctl["openflow"].setdefault("listen_host", "127.0.0.1")
        ctl.setdefault("grpc", {})["port"] = self.grpc_port
        ctl.setdefault("metrics", {})["port"] = self.metrics_port
        ctl.setdefault("state", {}).setdefault("path", str(workdir / "controller.sqlite"))
        self.config_path = workdir / "controller.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = workdir / "controller.log"
        self.proc: subprocess.Popen | None = None
        self.client: ControllerClient | None = None

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self) -> "ControllerProcess":
        self._launch(["controller.cli", "run", str(self.config_path)], ControllerClient(self.grpc_address),
                     ready_timeout_s=30)
        return self


def _quiet_htb(record: logging.LogRecord) -> bool:
    # tc's advice for links above ~16 Mbit/s (htb's default r2q); Mininet logs it as an error.
    return "quantum of class" not in record.getMessage()


# Candidate models for a lab that trains while people wait.
FAST_MODELS = "persistence,mean_last_6,seasonal_naive,boosting"


class PredictorProcess(_Child):
    """foresight-predictor serve as a child process on a free port, state in ``workdir``.

    ``models`` restricts its candidate models (``FORESIGHT_MODELS``), e.g. to the fast
    ones for a lab that trains while people wait."""

    what = "predictor"
    stop_timeout_s = 10.0

    def __init__(self, workdir: Path, step_s: int = 300, horizons_s: tuple[float, ...] = (300,),
                 models: str = ""):
        self.workdir = workdir
        self.port = free_port()
        self.step_s = step_s
        self.horizons_s = horizons_s
        self.models = models
        self.log_path = workdir / "predictor.log"
        self.proc: subprocess.Popen | None = None
        self.client = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "PredictorProcess":
        from predictors.client import PredictorClient

        env = dict(os.environ)
        if self.models:
            env["FORESIGHT_MODELS"] = self.models
        argv = ["predictors.cli", "serve", "--listen", self.address,
                "--state-dir", str(self.workdir / "predictor"), "--step-s", str(self.step_s),
                "--horizons-s", ",".join(f"{h:g}" for h in self.horizons_s)]
        self._launch(argv, PredictorClient(self.address, timeout_s=30), ready_timeout_s=60, env=env)
        return self

    def train_on_fit_span(self, samples: Callable[[int, int], Iterable[tuple[str, float, float]]],
                          fit_end: int, start: int, horizon_s: float | tuple[float, ...], kind: str) -> dict:
        """The dataset's split (data/README.md): ``samples(0, fit_end)`` in, train on
        them alone, then the evaluation history before the replay, ``samples(fit_end,
        start)``. ``samples(lo, hi)`` yields (series, time, value) for rows lo..hi-1."""
        self.client.ingest(samples(0, fit_end), labels={"kind": kind})
        began = time.monotonic()
        horizons = list(horizon_s) if isinstance(horizon_s, tuple) else [horizon_s]
        job = self.client.wait_trained(self.client.train(horizons).job_id, timeout_s=900)
        trained_s = time.monotonic() - began
        if job is None or job.state != job.SUCCEEDED:
            raise LabError(f"training failed: {job}")
        self.client.ingest(samples(fit_end, start), labels={"kind": kind})
        return {"trained_s": round(trained_s, 1), "model_version": job.model_version,
                "candidates": self.models or "all"}


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Lab:
    def __init__(self, topology: str | TopologySpec, bw_scale: float = 0.001,
                 max_bw_mbps: float = 1000.0, link_bw: bool = True, controller_config: dict | None = None,
                 workdir: Path | None = None, hosts_per_switch: int = 1, prefix: str = ""):
        self.spec = load(topology) if isinstance(topology, str) else topology
        self.prefix = prefix            # before every node name (SpecTopo): a second copy beside this one
        self.bw_scale = bw_scale
        self.max_bw_mbps = max_bw_mbps
        self.link_bw = link_bw
        self.hosts_per_switch = hosts_per_switch
        self._own_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="foresight-lab-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = dict(controller_config or {})
        config["topology"] = self.spec.controller_topology(bw_scale, max_bw_mbps)
        self.controller = ControllerProcess(config, self.workdir)
        self.net = None

    @property
    def client(self) -> ControllerClient:
        return self.controller.client

    def start(self) -> "Lab":
        try:
            self.start_controller()
            self.start_network()
        except BaseException:
            self.stop()
            raise
        return self

    def start_controller(self) -> "Lab":
        ensure_ovs()
        self.controller.start()
        return self

    def start_network(self) -> "Lab":
        from mininet.link import Link, TCLink
        from mininet.log import lg, setLogLevel

        from topologies.mininet_topo import SpecTopo

        setLogLevel("warning")
        lg.addFilter(_quiet_htb)
        topo = SpecTopo(self.spec, bw_scale=self.bw_scale, max_bw_mbps=self.max_bw_mbps,
                        link_bw=self.link_bw, hosts_per_switch=self.hosts_per_switch, prefix=self.prefix)
        self._topo = topo
        self.net = start_mininet(topo, self.controller.of_port, TCLink if self.link_bw else Link)
        for host in self.net.hosts:
            self._prepare_host(host)
        return self

    @staticmethod
    def _prepare_host(host) -> None:
        # The userspace datapath does not complete checksums offloaded by the
        # veth: without this TCP times out (LAB.md). IPv6 off: no chatter.
        for intf in host.intfList():
            host.cmd(f"ethtool -K {intf.name} tx off >/dev/null 2>&1")
        host.cmd("sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1")

    def topo_hosts(self, switch_name: str) -> list[str]:
        """Mininet host names (prefixed) attached to a spec switch (``s1``, unprefixed)."""
        return self._topo.host_for_switch(switch_name)

    def client_name(self, dp_id: int) -> str:
        for sw in self.spec.switches:
            if sw.dp_id == dp_id:
                return sw.label
        return f"s{dp_id}"

    def wait_discovery(self, timeout_s: float = 60.0):
        return self.client.wait_topology(len(self.spec.switches), self.spec.directed_link_count(),
                                         timeout_s)

    def wait_edges(self, timeout_s: float = 30.0) -> None:
        """Until every switch has classified its host ports (needed before flooding)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            topo = self.client.topology()
            if topo.switches and all(any(p.is_edge for p in s.ports) for s in topo.switches):
                return
            time.sleep(0.25)
        raise TimeoutError("host ports were not classified in time")

    def stop(self) -> float | None:
        took = None
        if self.net is not None:
            try:
                self.net.stop()
            finally:
                self.net = None
        took = self.controller.stop()
        if self._own_workdir and os.environ.get("FORESIGHT_KEEP_LAB") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return took

    def __enter__(self) -> "Lab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
