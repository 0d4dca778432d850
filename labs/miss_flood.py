"""A flood of frames to unknown destinations, run inside a Mininet host of a lab.

    miss_flood.py --iface IF --src-mac MAC --src-ip IP --seconds S [--start-at T] [--macs N]

waits until the Unix time T (default: now), then for S seconds puts UDP/IPv4 frames
on interface IF as fast as it can, from the host's own MAC and IPv4 address to
unicast MACs (02:fe:..., N of them in turn) that no host has. Every one misses the
switch's paths and goes to the controller as a packet-in (table-miss of table
``forward``): the burst that queued LLDP behind data-plane packet-ins before they
were metered. Then it prints one JSON line::

    {"sent": N, "seconds": S}

Standard library only (a raw AF_PACKET socket, so root): it runs under whatever
python3 the host has.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import time

ETH_P_IP = 0x0800
UDP_PORT = 9            # discard


def _checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str) -> bytes:
    payload = b"foresight miss flood"
    udp = struct.pack("!HHHH", UDP_PORT, UDP_PORT, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(src_mac.replace(":", "")) + \
        struct.pack("!H", ETH_P_IP)
    return eth + ip + udp


def flood(iface: str, src_mac: str, src_ip: str, seconds: float, start_at: float, macs: int) -> dict:
    frames = [frame(src_mac, f"02:fe:00:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}",
                    src_ip, f"10.254.{i >> 8 & 0xFF}.{i & 0xFF}") for i in range(macs)]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    time.sleep(max(0.0, start_at - time.time()))
    started = time.time()
    end = started + seconds
    sent = i = 0
    while time.time() < end:
        for _ in range(256):        # the clock is read once per 256 frames
            try:
                sock.send(frames[i])
                sent += 1
            except OSError:         # the veth's queue is full: the switch is not keeping up
                time.sleep(0.0005)
            i = (i + 1) % len(frames)
    return {"sent": sent, "seconds": round(time.time() - started, 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iface", required=True)
    ap.add_argument("--src-mac", required=True)
    ap.add_argument("--src-ip", required=True)
    ap.add_argument("--seconds", type=float, required=True)
    ap.add_argument("--start-at", type=float, default=0.0, help="Unix time to start sending")
    ap.add_argument("--macs", type=int, default=4096, help="distinct unknown destination MACs")
    args = ap.parse_args()
    print(json.dumps(flood(args.iface, args.src_mac, args.src_ip, args.seconds, args.start_at, args.macs)),
          flush=True)


if __name__ == "__main__":
    main()
