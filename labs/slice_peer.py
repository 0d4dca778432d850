"""Both ends of the slice load-balancing tests (TCP), run inside Mininet hosts.

    serve --port P --name N      a member: greet every connection with N, then echo lines
    hold --vip V --port P --count K
                                 a client: open K connections to the VIP, print the
                                 members that answered as one JSON line, then on
                                 every "check" line from stdin send a line on each
                                 connection and print which ones echoed it back
                                 (and what went wrong with the others);
                                 "open" opens K more connections the same way; EOF ends

Standard library only: it runs under whatever python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading


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
            # Every connection is pinged before any echo is read, so one slow echo
            # does not hold up the others: the check takes about one round trip.
            sent = {}
            for i, (sock, _, _) in enumerate(conns):
                try:
                    sock.sendall(f"ping {i}\n".encode())
                except OSError as exc:
                    sent[i] = f"{type(exc).__name__}: {exc}"
            alive, errors = [], {}
            for i, (_, reader, _) in enumerate(conns):
                echoed = sent.get(i)
                if echoed is None:
                    try:
                        echoed = reader.readline().decode().strip()
                    except OSError as exc:
                        echoed = f"{type(exc).__name__}: {exc}"
                alive.append(echoed == f"ping {i}")
                if not alive[-1]:
                    errors[i] = echoed or "closed"
            print(json.dumps({"alive": alive, "errors": errors, "members": [c[2] for c in conns]}),
                  flush=True)
    for sock, _, _ in conns:
        sock.close()


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
    args = ap.parse_args()
    if args.mode == "serve":
        serve(args.port, args.name)
    else:
        hold(args.vip, args.port, args.count)


if __name__ == "__main__":
    main()
