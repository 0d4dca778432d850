"""Replaying a traffic matrix in Mininet: one paced UDP flow per OD pair.

    send --plan FILE --start T --step-s S
        FILE is JSON {"port": P, "flows": {"<dst ip>": [Mbit/s per interval, ...]},
        "sockets": N}: this host sends to every listed destination at once, interval
        i at its rate during [T + i*S, T + (i+1)*S), its datagrams taking turns over N
        source ports (default 1: one UDP flow per destination; more let a switch's
        per-flow hashing split the destination's traffic). Each datagram carries the interval index, so
        the receiver can count per interval. Prints {"sent": {dst: [bytes per
        interval]}} when done.
    recv --port P
        counts received bytes per (source, interval) until stdin closes, then prints
        {"received": {src: {interval: bytes}}}.

Standard library only: it runs under whatever python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
from collections import defaultdict

FRAME = 1200                 # bytes on the wire per datagram
OVERHEAD = 14 + 20 + 8       # Ethernet, IPv4 and UDP headers
HEADER = struct.Struct("!I")  # interval index


def send(plan: dict, start: float, step_s: float, tick_s: float = 0.002) -> dict:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(int(plan.get("sockets", 1)))]
    port = int(plan["port"])
    flows = {dst: [float(r) for r in rates] for dst, rates in plan["flows"].items()}
    intervals = max((len(r) for r in flows.values()), default=0)
    sent = {dst: [0] * intervals for dst in flows}
    pad = bytes(FRAME - OVERHEAD - HEADER.size)
    print("ready", flush=True)
    for i in range(intervals):
        begin, end = start + i * step_s, start + (i + 1) * step_s
        payload = HEADER.pack(i) + pad
        while True:
            now = time.time()
            if now >= end:
                break
            if now >= begin:
                for dst, rates in flows.items():
                    mbps = rates[i] if i < len(rates) else 0.0
                    due = int(mbps * 1e6 / 8 * (now - begin)) - sent[dst][i]
                    while due >= FRAME:
                        try:
                            socks[sent[dst][i] // FRAME % len(socks)].sendto(payload, (dst, port))
                        except OSError:          # no ARP answer yet: the bytes count as offered
                            pass
                        sent[dst][i] += FRAME
                        due -= FRAME
            time.sleep(min(tick_s, max(0.0, end - now), max(tick_s / 4, begin - now)))
    for sock in socks:
        sock.close()
    return {"sent": sent}


def recv(port: int, stop: threading.Event) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.2)
    counts: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    print("receiving", flush=True)
    while not stop.is_set():
        try:
            data, (src, _) = sock.recvfrom(65536)
        except socket.timeout:
            continue
        if len(data) >= HEADER.size:
            counts[src][HEADER.unpack_from(data)[0]] += len(data) + OVERHEAD
    return {"received": {src: dict(by_interval) for src, by_interval in counts.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    sd = sub.add_parser("send")
    sd.add_argument("--plan", required=True)
    sd.add_argument("--start", type=float, required=True)
    sd.add_argument("--step-s", type=float, required=True)
    rv = sub.add_parser("recv")
    rv.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    if args.mode == "send":
        with open(args.plan) as fh:
            plan = json.load(fh)
        print(json.dumps(send(plan, args.start, args.step_s)), flush=True)
    else:
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        print(json.dumps(recv(args.port, stop)), flush=True)


if __name__ == "__main__":
    main()
