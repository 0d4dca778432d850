"""Learned hosts: where each MAC lives (switch and port) and its IPv4 addresses."""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.events import Event


@dataclass
class Host:
    mac: str
    dp_id: int
    port_no: int
    ipv4: set[str] = field(default_factory=set)
    last_seen: float = 0.0


class HostTable:
    def __init__(self):
        self.by_mac: dict[str, Host] = {}
        self._by_ip: dict[str, str] = {}
        self.version = 0        # bumped on every change worth saving

    def learn(self, mac: str, dp_id: int, port_no: int, ip: str | None, now: float) -> list[Event]:
        mac = mac.lower()
        host = self.by_mac.get(mac)
        events: list[Event] = []
        if host is None:
            host = Host(mac, dp_id, port_no, last_seen=now)
            self.by_mac[mac] = host
            events.append(Event("HOST_ADD", now, dp_id, port_no, host_mac=mac, detail=ip or ""))
            self.version += 1
        elif (host.dp_id, host.port_no) != (dp_id, port_no):
            old = f"{host.dp_id}:{host.port_no}"
            host.dp_id, host.port_no = dp_id, port_no
            events.append(Event("HOST_MOVE", now, dp_id, port_no, host_mac=mac, detail=f"from {old}"))
            self.version += 1
        host.last_seen = now
        if ip and ip != "0.0.0.0" and ip not in host.ipv4:
            previous = self._by_ip.get(ip)
            if previous and previous != mac and previous in self.by_mac:
                self.by_mac[previous].ipv4.discard(ip)
            host.ipv4.add(ip)
            self._by_ip[ip] = mac
            self.version += 1
        return events

    def restore(self, mac: str, dp_id: int, port_no: int, ipv4: list[str], last_seen: float) -> None:
        host = Host(mac.lower(), dp_id, port_no, set(ipv4), last_seen)
        self.by_mac[host.mac] = host
        for ip in ipv4:
            self._by_ip[ip] = host.mac

    def get(self, mac: str) -> Host | None:
        return self.by_mac.get(mac.lower())

    def by_ip(self, ip: str) -> Host | None:
        mac = self._by_ip.get(ip)
        return self.by_mac.get(mac) if mac else None

    def on_switch(self, dp_id: int) -> list[Host]:
        return sorted((h for h in self.by_mac.values() if h.dp_id == dp_id), key=lambda h: h.mac)

    def all(self) -> list[Host]:
        return sorted(self.by_mac.values(), key=lambda h: (h.dp_id, h.port_no, h.mac))

    def __len__(self) -> int:
        return len(self.by_mac)
