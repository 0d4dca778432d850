"""First packets for many host pairs at once, run inside every Mininet host of a lab.

    pair_burst.py --port P --start-at T --peers IP,IP,... [--timeout-s S]

binds UDP port P, waits until the Unix time T, sends one datagram to every peer
(back to back, each carrying its send time), and receives until a datagram has
come from every peer or S seconds have passed since T. Then it prints one JSON line::

    {"sent": N, "received": {"10.0.0.2": [send_s, recv_s], ...}}

Every host sends to every other, so each datagram is the first packet of its
(source, destination) pair: the controller installs that pair's path when it sees
it. Sender and receiver share the machine's clock (Mininet hosts are namespaces),
so ``recv_s - send_s`` is the pair's first-packet delivery time.

Standard library only: it runs under whatever python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import threading
import time

HEADER = struct.Struct("!d")        # send time (Unix seconds)


def run(port: int, start_at: float, peers: list[str], timeout_s: float) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.05)
    received: dict[str, list[float]] = {}
    wanted = set(peers)
    deadline = start_at + timeout_s

    def receive() -> None:
        while time.time() < deadline and not wanted <= received.keys():
            try:
                data, (ip, _) = sock.recvfrom(64)
            except socket.timeout:
                continue
            now = time.time()
            if len(data) >= HEADER.size and ip not in received:
                received[ip] = [HEADER.unpack_from(data)[0], now]

    receiver = threading.Thread(target=receive, daemon=True)
    receiver.start()
    time.sleep(max(0.0, start_at - time.time()))
    sent = 0
    for ip in peers:
        sock.sendto(HEADER.pack(time.time()), (ip, port))
        sent += 1
    receiver.join()
    return {"sent": sent, "received": received}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--start-at", type=float, required=True, help="Unix time to start sending")
    ap.add_argument("--peers", required=True, help="comma-separated IPv4 addresses")
    ap.add_argument("--timeout-s", type=float, default=15.0)
    args = ap.parse_args()
    print(json.dumps(run(args.port, args.start_at, args.peers.split(","), args.timeout_s)), flush=True)


if __name__ == "__main__":
    main()
