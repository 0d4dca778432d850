"""Failover loss windows in the lab: a 1 kHz UDP probe runs both ways between two
hosts while a link on their path fails, and again while it comes back.

    result = measure(fast_failover=True)
    for w in result.windows:
        print(w.event, w.direction, w.window_ms, w.lost)

One ``Lab`` per call (controller with ``controller.routing.fast_failover`` as asked,
Mininet on the catalogue topology), always stopped before returning. The probe is
``labs/udp_probe.py`` in both hosts at once; the link goes down (and later up)
with Mininet's ``configLinkStatus``, which takes both veth ends down as a pulled
cable would. A loss window is the longest run of missing datagrams around the event
(time between the datagrams at its edges, less one interval); with fast failover it
is the switches' own reaction, without it the controller's round trip.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field

from labs.lab import Lab
from labs.udp_probe import both_ways, loss_windows

# A gap belongs to the event if its last datagram before the gap was sent in this
# window around the event (the probe's clock is the machine's).
BEFORE_EVENT_S = 0.25
AFTER_EVENT_S = 1.5


@dataclass(frozen=True)
class Window:
    event: str              # "fail" or "restore"
    direction: str          # e.g. "h1->h2"
    window_ms: float        # longest gap around the event (0: nothing lost)
    lost: int               # datagrams lost around the event
    lost_total: int         # ... and over the whole probe
    away: tuple[tuple[float, int], ...] = ()    # (seconds from the event, lost) of gaps away from it


@dataclass
class Result:
    fast_failover: bool
    windows: list[Window] = field(default_factory=list)
    paths: dict[str, list[int]] = field(default_factory=dict)     # "before", "failed", "restored"

    def window(self, event: str, direction: str) -> Window:
        return next(w for w in self.windows if (w.event, w.direction) == (event, direction))


def _probe_across(net, a: str, b: str, action, rate_hz: float, duration_s: float, at_s: float,
                  port: int) -> tuple[float, dict[str, dict]]:
    """The probe both ways between Mininet hosts ``a`` and ``b`` (``udp_probe.both_ways``)."""
    def popen(name, argv):
        return net.get(name).popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return both_ways(popen, lambda name: net.get(name).IP(), a, b, action, rate_hz, duration_s, at_s, port)


def _windows(event: str, event_at: float, reports: dict[str, dict]) -> list[Window]:
    out = []
    for direction, report in sorted(reports.items()):
        gaps = loss_windows(report, report["peer_sent"])
        near = [(ms, lost) for start, ms, lost in gaps
                if event_at - BEFORE_EVENT_S <= start <= event_at + AFTER_EVENT_S]
        away = tuple((round(start - event_at, 3), lost) for start, _, lost in gaps
                     if lost and not event_at - BEFORE_EVENT_S <= start <= event_at + AFTER_EVENT_S)
        out.append(Window(event, direction, max((ms for ms, _ in near), default=0.0),
                          sum(lost for _, lost in near), sum(lost for _, _, lost in gaps), away))
    return out


def _dps(client, a_ip: str, b_ip: str) -> list[int]:
    return [h.dp_id for h in client.path(a_ip, b_ip).hops]


def _wait_path(client, a_ip: str, b_ip: str, differs_from: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    while True:
        dps = _dps(client, a_ip, b_ip)
        if dps != differs_from or time.monotonic() > deadline:
            return dps
        time.sleep(0.1)


@contextlib.contextmanager
def _started(topology: str, config: dict, bw_scale: float, hosts: tuple[str, str], hosts_per_switch: int = 1,
             all_pairs: bool = False):
    """A lab up, discovered, with ``hosts`` reaching each other both ways (and every
    pair's path installed, ``all_pairs``); the controller's log on a failure; always stopped."""
    lab = Lab(topology, bw_scale=bw_scale, controller_config=config, hosts_per_switch=hosts_per_switch)
    try:
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        if all_pairs and lab.net.pingAll(timeout=2) != 0.0:
            raise RuntimeError("pingAll lost packets before the failure")
        a, b = (lab.net.get(h) for h in hosts)
        for src, dst in ((a, b), (b, a)):       # proxy ARP, then the pair's path both ways
            if "1 received" not in src.cmd(f"ping -c1 -W2 {dst.IP()}"):
                raise RuntimeError(f"{src.name} cannot reach {dst.name} before the failure")
        yield lab, a, b
    except BaseException:
        if lab.controller.proc is not None:
            sys.stderr.write(f"controller log:\n{lab.controller.log_tail()}\n")
        raise
    finally:
        lab.stop()


def measure(fast_failover: bool, topology: str = "triangle", link: tuple[str, str] = ("s1", "s2"),
            hosts: tuple[str, str] = ("h1", "h2"), rate_hz: float = 1000.0, duration_s: float = 4.0,
            at_s: float = 1.5, bw_scale: float = 0.1, port: int = 5999, hosts_per_switch: int = 1,
            all_pairs: bool = False) -> Result:
    """Start a lab, fail ``link`` under the probe, then restore it under the probe.
    ``all_pairs``: first install every host pair's path (pingAll), so the controller
    has a network's worth of paths to move, not just the probe's."""
    config = {"controller": {"routing": {"fast_failover": fast_failover}}}
    result = Result(fast_failover)
    with _started(topology, config, bw_scale, hosts, hosts_per_switch, all_pairs) as (lab, a, b):
        client = lab.client
        result.paths["before"] = _dps(client, a.IP(), b.IP())
        event_at, reports = _probe_across(lab.net, *hosts, lambda: lab.net.configLinkStatus(*link, "down"),
                                          rate_hz, duration_s, at_s, port)
        result.windows += _windows("fail", event_at, reports)
        result.paths["failed"] = _wait_path(client, a.IP(), b.IP(), result.paths["before"])
        event_at, reports = _probe_across(lab.net, *hosts, lambda: lab.net.configLinkStatus(*link, "up"),
                                          rate_hz, duration_s, at_s, port)
        result.windows += _windows("restore", event_at, reports)
        result.paths["restored"] = _wait_path(client, a.IP(), b.IP(), result.paths["failed"])
    return result


def _busy_loops(n: int) -> list[subprocess.Popen]:
    """``n`` processes that burn a core each (stopped by the caller, by handle)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def repeat_restores(drain_s: float, rounds: int, busy: int = 0, topology: str = "ring4",
                    link: tuple[str, str] = ("s2", "s3"), hosts: tuple[str, str] = ("h1", "h3"),
                    rate_hz: float = 1000.0, bw_scale: float = 0.1, port: int = 5999) -> list[int]:
    """One lab (fast failover, ``controller.routing.drain_s`` as given): ``rounds``
    times fail ``link`` and restore it under the probe, the restore with ``busy``
    processes burning CPU; returns the datagrams each restore lost (both ways)."""
    config = {"controller": {"routing": {"fast_failover": True, "drain_s": drain_s}}}
    lost = []
    with _started(topology, config, bw_scale, hosts) as (lab, a, b):
        client = lab.client
        for _ in range(rounds):
            before = _dps(client, a.IP(), b.IP())
            _probe_across(lab.net, *hosts, lambda: lab.net.configLinkStatus(*link, "down"), rate_hz,
                          2.0, 1.0, port)
            failed = _wait_path(client, a.IP(), b.IP(), before)
            load = _busy_loops(busy)
            try:
                event_at, reports = _probe_across(lab.net, *hosts,
                                                  lambda: lab.net.configLinkStatus(*link, "up"),
                                                  rate_hz, 2.0, 1.0, port)
            finally:
                for proc in load:
                    proc.kill()
                    proc.wait()
            lost.append(sum(w.lost for w in _windows("restore", event_at, reports)))
            _wait_path(client, a.IP(), b.IP(), failed)
            time.sleep(0.5)             # the drain and the deletions behind it
    return lost
