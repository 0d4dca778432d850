"""Both ends of slice traffic in the lab and the e2e tests, run inside Mininet hosts.

    serve --port P --name N      a member: greet every connection with N, then echo lines
    hold --vip V --port P --count K
                                 a client: open K connections to the VIP, print the
                                 members that answered as one JSON line, then on
                                 every "check" line from stdin send a line on each
                                 connection and print which ones echoed it back;
                                 "open" opens K more connections the same way; EOF ends
    sink --port P                a member: receive and discard UDP datagrams
    send --dst V --port P --rates R1,R2,... --start T --step-s S
                                 a client: replay a demand series as paced UDP; rate
                                 Ri (Mbit/s of Ethernet frames) is played during
                                 [T + i*S, T + (i+1)*S) (T in Unix seconds); prints
                                 {"sent_bytes": [...]} per sample when done

Standard library only: it runs under whatever python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time


def serve(port: int, name: str) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(64)

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.sendall(f"{name}\n".encode())
            reader = conn.makefile("rb")
            for line in reader:
                conn.sendall(line)
    print("serving", flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


def _open(vip: str, port: int, count: int) -> list[tuple[socket.socket, object, str]]:
    conns = []
    for _ in range(count):
        sock = socket.create_connection((vip, port), timeout=5)
        reader = sock.makefile("rb")
        conns.append((sock, reader, reader.readline().decode().strip()))
    return conns


def hold(vip: str, port: int, count: int) -> None:
    conns = _open(vip, port, count)
    print(json.dumps({"members": [c[2] for c in conns]}), flush=True)
    for command in sys.stdin:
        command = command.strip()
        if command == "open":
            fresh = _open(vip, port, count)
            conns += fresh
            print(json.dumps({"members": [c[2] for c in fresh]}), flush=True)
        elif command == "check":
            alive = []
            for i, (sock, reader, _) in enumerate(conns):
                try:
                    sock.sendall(f"ping {i}\n".encode())
                    alive.append(reader.readline().decode().strip() == f"ping {i}")
                except OSError:
                    alive.append(False)
            print(json.dumps({"alive": alive, "members": [c[2] for c in conns]}), flush=True)
    for sock, _, _ in conns:
        sock.close()


FRAME = 1200                 # bytes on the wire per datagram
OVERHEAD = 14 + 20 + 8       # Ethernet, IPv4 and UDP headers


def sink(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    print("sinking", flush=True)
    while True:
        sock.recv(65536)


def send(dst: str, port: int, rates: list[float], start: float, step_s: float, tick_s: float = 0.002) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = bytes(FRAME - OVERHEAD)
    sent = [0] * len(rates)
    print("ready", flush=True)
    for i, mbps in enumerate(rates):
        begin, end = start + i * step_s, start + (i + 1) * step_s
        while True:
            now = time.time()
            if now >= end:
                break
            if now >= begin:
                # Send whatever the rate owes since the sample began, then sleep a tick.
                due = int(mbps * 1e6 / 8 * (now - begin)) - sent[i]
                while due >= FRAME:
                    try:
                        sock.sendto(payload, (dst, port))
                    except OSError:          # e.g. no ARP answer yet: the bytes count as offered
                        pass
                    sent[i] += FRAME
                    due -= FRAME
            time.sleep(min(tick_s, max(0.0, end - now), max(tick_s / 4, begin - now)))
    print(json.dumps({"sent_bytes": sent}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    sub = ap.add_subparsers(dest="mode", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--port", type=int, required=True)
    sv.add_argument("--name", required=True)
    hd = sub.add_parser("hold")
    hd.add_argument("--vip", required=True)
    hd.add_argument("--port", type=int, required=True)
    hd.add_argument("--count", type=int, required=True)
    sk = sub.add_parser("sink")
    sk.add_argument("--port", type=int, required=True)
    sd = sub.add_parser("send")
    sd.add_argument("--dst", required=True)
    sd.add_argument("--port", type=int, required=True)
    sd.add_argument("--rates", required=True, help="comma list of Mbit/s, one per sample")
    sd.add_argument("--start", type=float, required=True, help="Unix seconds the first sample begins")
    sd.add_argument("--step-s", type=float, required=True)
    args = ap.parse_args()
    if args.mode == "serve":
        serve(args.port, args.name)
    elif args.mode == "hold":
        hold(args.vip, args.port, args.count)
    elif args.mode == "sink":
        sink(args.port)
    else:
        send(args.dst, args.port, [float(r) for r in args.rates.split(",")], args.start, args.step_s)


if __name__ == "__main__":
    main()
