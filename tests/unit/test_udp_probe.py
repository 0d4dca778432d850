"""The loss probe on loopback: with ``wait_peer`` an end that starts late loses
nothing of what the other sent; without it, the first datagrams go to a port nobody
has bound and are counted lost."""

from __future__ import annotations

import socket
import threading
import time

from labs.udp_probe import loss_windows, run


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _pair(wait_peer: bool, late_s: float) -> tuple[dict, dict]:
    """Two probes at 1 kHz for 0.5 s on loopback, ``b`` started ``late_s`` after ``a``."""
    pa, pb = _free_ports(2)
    out: dict[str, dict] = {}

    def go(name, port, peer_port):
        out[name] = run("127.0.0.1", port, 1000.0, 0.5, 0.3, wait_peer=wait_peer, peer_port=peer_port)

    a = threading.Thread(target=go, args=("a", pa, pb))
    b = threading.Thread(target=go, args=("b", pb, pa))
    a.start()
    time.sleep(late_s)
    b.start()
    a.join(20)
    b.join(20)
    return out["a"], out["b"]


def test_waiting_for_the_peer_counts_no_loss_when_one_end_starts_late():
    a, b = _pair(wait_peer=True, late_s=0.3)
    # What b received is a's stream, and the reverse.
    for sender, receiver in ((a, b), (b, a)):
        assert receiver["received"] == sender["sent"] == 500
        assert loss_windows(receiver, sender["sent"]) == []


def test_without_waiting_the_late_end_misses_the_first_datagrams():
    a, b = _pair(wait_peer=False, late_s=0.3)
    gaps = loss_windows(b, a["sent"])
    assert b["received"] < a["sent"]
    assert gaps[0][2] >= 100, gaps        # a's first ~250 ms went to an unbound port
