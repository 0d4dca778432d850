"""A UDP probe for loss windows, run inside Mininet hosts (both ends at once).

    run --peer IP --port P --rate-hz R --duration-s D [--linger-s L] [--wait-peer]

sends R datagrams a second to ``IP:P`` for D seconds, each carrying its sequence
number and send time, while receiving the peer's datagrams on port P; L seconds
after sending stops it prints one JSON line describing what it received::

    {"sent": N, "received": M, "duplicates": K, "first_send_s": T0, "interval_s": 0.001,
     "gaps": [[seq_before, seq_after, send_s_before, send_s_after], ...]}

A gap is a run of missing sequence numbers between two received datagrams (the
datagrams at its edges are named by sequence number and send time); a run missing at
the end counts too (``seq_after`` is then the peer's count sent, unknown here, so -1).
``--wait-peer`` (when the peer runs this probe too): say hello until the peer is
heard before the first datagram, so none is sent before the peer's socket is bound.
``loss_windows`` turns a report into windows in milliseconds. Sender and receiver
share the machine's clock (Mininet hosts are namespaces), so send times compare.

Standard library only: it runs under whatever python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time

HEADER = struct.Struct("!Qd")       # sequence number, send time (Unix seconds)
PAYLOAD = 64                         # bytes per datagram, header included
HELLO = 2**64 - 1                    # the sequence number of a "listening" datagram
HELLO_EVERY_S = 0.01
HELLO_TIMEOUT_S = 10.0


def run(peer: str, port: int, rate_hz: float, duration_s: float, linger_s: float,
        wait_peer: bool = False, peer_port: int | None = None) -> dict:
    """Send to ``peer``:``peer_port`` (default ``port``) while receiving on ``port``;
    the report described above."""
    to = (peer, peer_port or port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.1)
    received: dict[int, float] = {}
    duplicates = 0
    stop = threading.Event()
    heard = threading.Event()            # the peer's socket is bound: datagrams to it land

    def receive() -> None:
        nonlocal duplicates
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(2048)
            except socket.timeout:
                continue
            if len(data) < HEADER.size:
                continue
            seq, sent_at = HEADER.unpack_from(data)
            heard.set()
            if seq == HELLO:
                continue
            if seq in received:
                duplicates += 1
            received[seq] = sent_at

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    interval = 1.0 / rate_hz
    count = int(duration_s * rate_hz)
    padding = bytes(PAYLOAD - HEADER.size)
    # Both ends start at once but not in step (a loaded machine can start one Python
    # 100 ms after the other): say hello until the peer is heard, so no datagram is
    # sent before its socket is bound and the first ones are not counted lost.
    give_up = time.time() + HELLO_TIMEOUT_S
    while wait_peer and not heard.is_set() and time.time() < give_up:
        try:
            sock.sendto(HEADER.pack(HELLO, time.time()) + padding, to)
        except OSError:
            pass
        heard.wait(HELLO_EVERY_S)
    if wait_peer and not heard.is_set():
        raise SystemExit(f"udp_probe: nothing heard from {peer}:{to[1]} in {HELLO_TIMEOUT_S:g} s")
    start = time.time() + 0.05
    for seq in range(count):
        due = start + seq * interval
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        try:
            sock.sendto(HEADER.pack(seq, time.time()) + padding, to)
        except OSError:
            pass            # no route or buffer full: the datagram is lost, as on a wire
    time.sleep(linger_s)
    stop.set()
    receiver.join()
    seqs = sorted(received)
    gaps = [[a, b, received[a], received[b]] for a, b in zip(seqs, seqs[1:]) if b - a > 1]
    if seqs and seqs[0] > 0:
        gaps.insert(0, [-1, seqs[0], start, received[seqs[0]]])
    return {"sent": count, "received": len(seqs), "duplicates": duplicates, "first_send_s": start,
            "interval_s": interval, "last_seq": seqs[-1] if seqs else -1,
            "last_send_s": received[seqs[-1]] if seqs else start, "gaps": gaps}


def loss_windows(report: dict, peer_sent: int | None = None) -> list[tuple[float, float, int]]:
    """``(start_s, window_ms, lost)`` per gap: start_s is the send time of the last
    datagram before the gap, window_ms the time between the datagrams at its edges
    less one interval (0 when nothing was lost), lost how many datagrams are missing.
    ``peer_sent`` (the peer's ``sent``) adds a run missing at the end."""
    interval = report["interval_s"]
    out = [(before_s, max(0.0, (after_s - before_s - interval) * 1000.0), after - before - 1)
           for before, after, before_s, after_s in report["gaps"]]
    if peer_sent is not None and report["last_seq"] < peer_sent - 1:
        lost = peer_sent - 1 - report["last_seq"]
        out.append((report["last_send_s"], lost * interval * 1000.0, lost))
    return out


def both_ways(popen, address, a: str, b: str, action, rate_hz: float, duration_s: float, at_s: float,
              port: int) -> tuple[float, dict[str, dict]]:
    """Run this probe in hosts ``a`` and ``b`` at once and call ``action()`` ``at_s`` in;
    (event time, reports keyed "a->b"/"b->a", each with the sender's count as
    ``peer_sent``). ``popen(host, argv)`` starts a process in a host (stdout and stderr
    piped, text), ``address(host)`` is its IP; both processes are waited for."""
    import sys
    import time
    args = ["--port", str(port), "--rate-hz", f"{rate_hz:g}", "--duration-s", f"{duration_s:g}",
            "--linger-s", "1.0", "--wait-peer"]
    procs = {name: popen(name, [sys.executable, __file__, "run", "--peer", address(peer), *args])
             for name, peer in ((a, b), (b, a))}
    time.sleep(at_s)
    event_at = time.time()
    action()
    reports = {}
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=duration_s + 20)
        if proc.returncode != 0:
            raise RuntimeError(f"probe in {name} failed: {err.strip()[-500:]}")
        reports[name] = json.loads(out.strip().splitlines()[-1])
    # What b received is the a->b direction.
    return event_at, {f"{a}->{b}": dict(reports[b], peer_sent=reports[a]["sent"]),
                      f"{b}->{a}": dict(reports[a], peer_sent=reports[b]["sent"])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("run", help="send to and receive from the peer, then print a report")
    cmd.add_argument("--peer", required=True)
    cmd.add_argument("--port", type=int, default=5999)
    cmd.add_argument("--rate-hz", type=float, default=1000.0)
    cmd.add_argument("--duration-s", type=float, required=True)
    cmd.add_argument("--linger-s", type=float, default=1.0)
    cmd.add_argument("--wait-peer", action="store_true", help="start once the peer (this probe too) is heard")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.peer, args.port, args.rate_hz, args.duration_s, args.linger_s, args.wait_peer)),
          flush=True)


if __name__ == "__main__":
    main()
