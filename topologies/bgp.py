"""Real BGP daemons for labs and tests: an FRR router (provider side) and a GoBGP daemon
(our speaker, configured over its gRPC API by ``apps.peering.gobgp``).

This module only writes configs and starts processes; it imports nothing of ours.
Every process is started through a ``spawn(argv, **popen_kwargs) -> Popen`` callable,
so the same classes run in a named network namespace (:func:`netns_spawn`) or in a
Mininet host (``host.popen``), and every process is stopped by its handle (SIGTERM,
wait, SIGKILL), never by name.

FRR 8.4 recipe (LAB.md "BGP peers"): zebra then bgpd, each in the foreground (so the
handle is the daemon itself), with ``-N <name>`` (own pathspace), their own zserv and
vty sockets in the run directory, no vty TCP port, ``-i`` pidfiles in the run
directory; the run directory and configs belong to frr:frr (bgpd drops privileges).
A prefix is originated with ``network P route-map ORIG-...``, one route-map per
distinct extra AS path (``set as-path prepend``), so a prefix ``("100.64.3.0/24",
(64701,))`` leaves the router with AS path ``[router_asn, 64701]``.
Measured here: bgpd loads a config with 10,000 ``network`` lines (50 route-maps) in
~0.2 s and sends them all to GoBGP in ~1.3 s. The number of distinct AS paths is the
limit, not the number of prefixes: 100 route-maps over 1,000 prefixes were fine (~1.1 s
to send all), 1,000 route-maps kept bgpd at 100 % CPU for minutes without opening a
session. Keep distinct paths to a few hundred at most.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from topologies.processes import terminate

Spawn = Callable[..., subprocess.Popen]
Prefix = tuple[str, tuple[int, ...]]

FRR_DIR = Path("/usr/lib/frr")
STOP_TIMEOUT_S = 5.0


class BgpLabError(RuntimeError):
    """A BGP daemon could not be started or driven; the message says which and why."""


def netns_spawn(name: str) -> Spawn:
    """A spawn that runs argv inside the named network namespace (``ip netns exec``
    execs the command, so the handle is the daemon's own process)."""

    def spawn(argv: list[str], **popen_kwargs) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", name, *argv], **popen_kwargs)

    return spawn


def _stop(proc: subprocess.Popen | None, timeout_s: float = STOP_TIMEOUT_S) -> None:
    if proc is None:
        return
    terminate(proc, timeout_s)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


def _run(spawn: Spawn, argv: list[str], timeout_s: float, stdin: str | None = None) -> str:
    """Run a short command through spawn; its stdout, or BgpLabError with its stderr."""
    proc = spawn(argv, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BgpLabError(f"{argv[0]} timed out after {timeout_s} s") from None
    if proc.returncode != 0:
        raise BgpLabError(f"{' '.join(argv[:3])}... failed ({proc.returncode}): {(err or out).strip()}")
    return out


# --- FRR configuration (pure) -------------------------------------------------------


def route_map_name(as_path: tuple[int, ...]) -> str | None:
    """The route-map that prepends ``as_path`` (None for a prefix the router originates
    with its own AS only)."""
    return "ORIG-" + "-".join(str(asn) for asn in as_path) if as_path else None


def _check_prefix(prefix: str) -> str:
    try:
        return str(ipaddress.IPv4Network(prefix, strict=True))
    except ValueError as exc:
        raise ValueError(f"prefix {prefix!r}: {exc}") from None


def _check_as_path(as_path: tuple[int, ...]) -> None:
    for asn in as_path:
        if not 1 <= asn <= 4294967295:
            raise ValueError(f"as_path {as_path!r}: ASN {asn} out of range 1..4294967295")


def network_lines(prefixes: Iterable[Prefix], withdraw: bool = False) -> list[str]:
    """``network`` lines (inside ``address-family ipv4 unicast``) for the prefixes."""
    lines = []
    for prefix, as_path in prefixes:
        _check_as_path(as_path)
        rmap = route_map_name(as_path)
        line = f"network {_check_prefix(prefix)}" + (f" route-map {rmap}" if rmap else "")
        lines.append(("no " if withdraw else "") + line)
    return lines


def route_map_lines(paths: Iterable[tuple[int, ...]]) -> list[str]:
    """One route-map per distinct non-empty extra AS path, sorted by name."""
    lines: list[str] = []
    for as_path in sorted({p for p in paths if p}, key=lambda p: route_map_name(p) or ""):
        _check_as_path(as_path)
        lines += [f"route-map {route_map_name(as_path)} permit 10",
                  f" set as-path prepend {' '.join(str(a) for a in as_path)}", "exit"]
    return lines


def render_zebra_conf(name: str) -> str:
    return f"hostname {name}\nlog stdout warnings\n"


def render_bgpd_conf(name: str, asn: int, router_id: str, neighbours: Sequence[tuple[str, int]],
                     prefixes: Sequence[Prefix], hold_s: int = 9, keepalive_s: int = 3) -> str:
    """bgpd.conf for a router that peers with ``neighbours`` and originates ``prefixes``."""
    if not 1 <= asn <= 4294967295:
        raise ValueError(f"asn {asn}: out of range 1..4294967295")
    ipaddress.IPv4Address(router_id)
    lines = [f"hostname {name}", "log stdout warnings", f"router bgp {asn}",
             f" bgp router-id {router_id}", " no bgp ebgp-requires-policy",
             " no bgp network import-check", " no bgp default ipv4-unicast"]
    for address, peer_asn in neighbours:
        ipaddress.ip_address(address)
        lines += [f" neighbor {address} remote-as {peer_asn}",
                  f" neighbor {address} timers {keepalive_s} {hold_s}",
                  f" neighbor {address} timers connect 1",
                  f" neighbor {address} advertisement-interval 0"]
    lines.append(" address-family ipv4 unicast")
    lines += [f"  neighbor {address} activate" for address, _ in neighbours]
    lines += ["  " + line for line in network_lines(prefixes)]
    lines += [" exit-address-family", "exit"]
    # Route-maps first: a network line naming a route-map not yet defined is accepted
    # but warns, and the prepend is only applied once the map appears.
    return "\n".join(route_map_lines(as_path for _, as_path in prefixes) + lines) + "\n"


# --- FRR router ---------------------------------------------------------------------


class FrrRouter:
    """An FRR router (zebra + bgpd) in a namespace or Mininet host, originating prefixes
    and peering eBGP with ``neighbours``."""

    def __init__(self, name: str, run_dir: str | Path, spawn: Spawn, asn: int, router_id: str,
                 neighbours: Sequence[tuple[str, int]], prefixes: Sequence[Prefix] = (),
                 hold_s: int = 9, keepalive_s: int = 3):
        self.name = name
        self.run_dir = Path(run_dir)
        self.spawn = spawn
        self.asn = asn
        self.router_id = router_id
        self.neighbours = list(neighbours)
        self.prefixes = list(prefixes)
        self.hold_s = hold_s
        self.keepalive_s = keepalive_s
        self.zebra: subprocess.Popen | None = None
        self.bgpd: subprocess.Popen | None = None
        self._route_maps: set[tuple[int, ...]] = {p for _, p in self.prefixes if p}

    def bgpd_conf(self) -> str:
        return render_bgpd_conf(self.name, self.asn, self.router_id, self.neighbours, self.prefixes,
                                self.hold_s, self.keepalive_s)

    def _daemon_argv(self, daemon: str) -> list[str]:
        d = self.run_dir
        return [str(FRR_DIR / daemon), "-N", self.name, "-f", str(d / f"{daemon}.conf"),
                "-i", str(d / f"{daemon}.pid"), "-z", str(d / "zserv.api"), "--vty_socket", str(d),
                "-A", "127.0.0.1", "-P", "0", "--log", f"file:{d / f'{daemon}.log'}"]

    def _start_daemon(self, daemon: str, timeout_s: float) -> subprocess.Popen:
        vty = self.run_dir / f"{daemon}.vty"
        vty.unlink(missing_ok=True)  # left behind by kill(); its presence means "ready"
        proc = self.spawn(self._daemon_argv(daemon), stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout_s
        while not vty.exists():
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace").strip() if proc.stderr else ""
                raise BgpLabError(f"{self.name}: {daemon} exited ({proc.returncode}): {err}")
            if time.monotonic() > deadline:
                _stop(proc)
                raise BgpLabError(f"{self.name}: {daemon} vty socket {vty} absent after {timeout_s} s")
            time.sleep(0.05)
        return proc

    def start(self, timeout_s: float = 20.0) -> FrrRouter:
        """Write the configs, start zebra then bgpd; returns when both answer on vty.

        bgpd reads its whole config before opening its vty socket, so the wait includes
        the config load (10,000 ``network`` lines: ~1 s here)."""
        if self.bgpd is not None and self.bgpd.poll() is None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "zebra.conf").write_text(render_zebra_conf(self.name))
        (self.run_dir / "bgpd.conf").write_text(self.bgpd_conf())
        shutil.chown(self.run_dir, "frr", "frr")
        for path in self.run_dir.iterdir():
            shutil.chown(path, "frr", "frr")
        try:
            if self.zebra is None or self.zebra.poll() is not None:
                self.zebra = self._start_daemon("zebra", timeout_s)
            self.bgpd = self._start_daemon("bgpd", timeout_s)
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def kill(self) -> None:
        """SIGKILL bgpd only (a crash: no NOTIFICATION is sent to the peers)."""
        if self.bgpd is not None and self.bgpd.poll() is None:
            self.bgpd.kill()
            self.bgpd.wait()

    def stop(self, remove: bool = True) -> None:
        """Stop bgpd and zebra by handle and remove the run directory; safe to call twice."""
        _stop(self.bgpd)
        _stop(self.zebra)
        self.bgpd = self.zebra = None
        if remove:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def vtysh(self, *commands: str, timeout_s: float = 30.0) -> str:
        """Run vtysh commands against this router; their output."""
        argv = ["vtysh", "--vty_socket", str(self.run_dir)]
        for cmd in commands:
            argv += ["-c", cmd]
        return _run(self.spawn, argv, timeout_s)

    def _configure(self, lines: list[str], timeout_s: float) -> None:
        # A file through ``vtysh -f``: thousands of -c arguments would hit ARG_MAX.
        fd, path = tempfile.mkstemp(prefix="bgpd-", suffix=".conf", dir=self.run_dir)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")
        try:
            _run(self.spawn, ["vtysh", "--vty_socket", str(self.run_dir), "-f", path],
                 timeout_s)
        finally:
            os.unlink(path)

    def announce(self, prefixes: Sequence[Prefix], timeout_s: float = 60.0) -> None:
        """Originate more prefixes at runtime (config mode through vtysh)."""
        new_maps = [p for _, p in prefixes if p and p not in self._route_maps]
        lines = route_map_lines(new_maps)
        lines += [f"router bgp {self.asn}", " address-family ipv4 unicast"]
        lines += ["  " + line for line in network_lines(prefixes)]
        lines += [" exit-address-family", "exit"]
        self._configure(lines, timeout_s)
        self._route_maps.update(new_maps)
        self.prefixes += [(p, a) for p, a in prefixes]

    def withdraw(self, prefixes: Sequence[Prefix] | Sequence[str], timeout_s: float = 60.0) -> None:
        """Stop originating prefixes (given as ``(prefix, as_path)`` or as bare prefixes)."""
        by_prefix = {_check_prefix(p): a for p, a in self.prefixes}
        chosen = [(_check_prefix(p if isinstance(p, str) else p[0]),) for p in prefixes]
        gone = [(p, by_prefix.get(p, ())) for (p,) in chosen]
        lines = [f"router bgp {self.asn}", " address-family ipv4 unicast"]
        lines += ["  " + line for line in network_lines(gone, withdraw=True)]
        lines += [" exit-address-family", "exit"]
        self._configure(lines, timeout_s)
        dropped = {p for p, _ in gone}
        self.prefixes = [(p, a) for p, a in self.prefixes if _check_prefix(p) not in dropped]

    def summary(self) -> dict:
        """``show bgp summary json`` (ipv4 unicast), parsed."""
        return json.loads(self.vtysh("show bgp ipv4 unicast summary json") or "{}")

    def established(self, address: str) -> bool:
        peers = self.summary().get("peers", {})
        return peers.get(address, {}).get("state") == "Established"

    def __enter__(self) -> FrrRouter:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --- GoBGP daemon -------------------------------------------------------------------


_PROBE = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1).close()"


class GoBgpDaemon:
    """``gobgpd`` with no config file (it is configured over its gRPC API), the API on
    127.0.0.1:api_port inside its namespace; with ``socket_path`` a socat relay in the same
    namespace makes it reachable from the root namespace as ``unix:socket_path``.

    GoBGP 3.10's API has no client authentication: it stays on loopback."""

    def __init__(self, run_dir: str | Path, spawn: Spawn, api_port: int = 50051,
                 socket_path: str | Path | None = None):
        self.run_dir = Path(run_dir)
        self.spawn = spawn
        self.api_port = api_port
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self.gobgpd: subprocess.Popen | None = None
        self.relay: subprocess.Popen | None = None
        self._log = None

    @property
    def target(self) -> str:
        """The gRPC target a client uses (the unix relay when there is one)."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        return f"127.0.0.1:{self.api_port}"

    def start(self, timeout_s: float = 10.0) -> GoBgpDaemon:
        if self.gobgpd is not None and self.gobgpd.poll() is None:
            return self
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.run_dir / "gobgpd.log", "ab")  # noqa: SIM115 (closed in stop)
        self.gobgpd = self.spawn(["gobgpd", f"--api-hosts=127.0.0.1:{self.api_port}", "--log-plain",
                                  "--log-level=info", "--pprof-disable"],
                                 stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        if self.socket_path is not None and (self.relay is None or self.relay.poll() is not None):
            self.relay = self.spawn(["socat", f"UNIX-LISTEN:{self.socket_path},fork,unlink-early",
                                     f"TCP:127.0.0.1:{self.api_port}"],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        try:
            self.wait_ready(timeout_s)
        except BaseException:
            self.stop(remove=False)
            raise
        return self

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Until the API port accepts connections inside the namespace (and the relay's
        socket exists); BgpLabError if gobgpd exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.gobgpd is None or self.gobgpd.poll() is not None:
                raise BgpLabError(f"gobgpd is not running (see {self.run_dir / 'gobgpd.log'})")
            if self.relay is not None and self.relay.poll() is not None:
                raise BgpLabError(f"socat relay for {self.socket_path} exited ({self.relay.returncode})")
            probe = self.spawn([sys.executable, "-c", _PROBE, str(self.api_port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            ok = probe.wait() == 0
            if ok and (self.socket_path is None or self.socket_path.exists()):
                return
            if time.monotonic() > deadline:
                raise BgpLabError(f"gobgpd API 127.0.0.1:{self.api_port} not ready after {timeout_s} s")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL gobgpd (a crash); the relay stays, so clients see the API refuse."""
        if self.gobgpd is not None and self.gobgpd.poll() is None:
            self.gobgpd.kill()
            self.gobgpd.wait()

    def stop(self, remove: bool = True) -> None:
        """Stop gobgpd and the relay by handle, remove the socket and run dir; safe twice."""
        _stop(self.relay)
        _stop(self.gobgpd)
        self.relay = self.gobgpd = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.socket_path is not None:
            self.socket_path.unlink(missing_ok=True)
        if remove:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> GoBgpDaemon:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
