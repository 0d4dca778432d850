"""Packet-ins: the part of the controller core that reads frames switches send it.

LLDP (links), broadcast ARP (answered by proxy ARP from the host table or an app's
claim, else flooded to host ports; our own flood echoed back over a link not yet
discovered is recognised and dropped), learning hosts, and first packets (a path for
the pair, then the frame sent on). A frame that cannot be trusted for learning (not
unicast, inconsistent ARP or IPv4 headers) is counted and dropped. The built-in
flows that send data-plane frames here pass the packet-in meter (``controller.core``).
"""

from __future__ import annotations

import logging

from os_ken.lib.packet import arp as arp_pkt
from os_ken.lib.packet import ethernet, ipv4, packet
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP, ETH_TYPE_IP, ETH_TYPE_LLDP
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller import arp, flows, lldp
from controller.sync import Out, locked

# The core's parts log as the core: one logger to configure and to filter on.
LOG = logging.getLogger("controller.core")

# A flooded ARP request seen again within this window on another port is our own
# flood echoed over a link that LLDP has not confirmed yet: ignored, not learned.
ARP_ECHO_WINDOW_S = 1.0


class PacketIn:
    """Frames from switches: a part of ``ControllerCore`` (it uses the core's topology,
    hosts, forwarding, apps and ``_sync``)."""

    @locked
    def packet_in(self, dp_id: int, in_port: int, data: bytes, now: float) -> Out:
        self.counters["packet_in"] += 1
        self._clock = now
        if dp_id not in self.switches:
            return []
        try:
            pkt = packet.Packet(data)
            eth = pkt.get_protocol(ethernet.ethernet)
        except Exception as err:  # noqa: BLE001 - any parser failure means a garbage frame
            self.counters["bad_packets"] += 1
            LOG.debug("dp %016x port %d: unparseable frame (%s)", dp_id, in_port, err)
            return []
        problem = _frame_problem(pkt, eth)
        if problem:
            self.counters["bad_packets"] += 1
            LOG.debug("dp %016x port %d: dropped frame: %s", dp_id, in_port, problem)
            return []
        if eth.ethertype == ETH_TYPE_LLDP:
            return self._lldp_in(dp_id, in_port, pkt, now)
        if self.topology.is_link_port(dp_id, in_port):
            return self._transit_miss(dp_id, in_port, eth, data)
        if eth.ethertype == ETH_TYPE_ARP and _is_multicast(eth.dst):
            return self._arp_in(dp_id, in_port, pkt.get_protocol(arp_pkt.arp), now)
        if eth.ethertype == ETH_TYPE_ARP:
            sender_ip = pkt.get_protocol(arp_pkt.arp).src_ip
        else:
            ip = pkt.get_protocol(ipv4.ipv4)
            sender_ip = ip.src if ip else None
        out = self._learn(eth.src, dp_id, in_port, sender_ip, now)
        if _is_multicast(eth.dst):
            return out
        return out + self._route(eth.src, eth.dst, dp_id, in_port, data, now)

    def _lldp_in(self, dp_id: int, in_port: int, pkt: packet.Packet, now: float) -> Out:
        sender = lldp.parse(pkt)
        if sender is None:
            return []
        events = self.topology.link_seen(sender[0], sender[1], dp_id, in_port, now)
        if not events:
            return []
        self._publish(events)
        return self._after_topology_change(now)

    def _transit_miss(self, dp_id: int, in_port: int, eth, data: bytes) -> Out:
        """A packet reached a switch on the path before its flow did: forward it on."""
        if _is_multicast(eth.dst):
            return []
        path = self.forwarding.paths.get((eth.src.lower(), eth.dst.lower()))
        if path is None or not any(h.dp_id == dp_id for h in path):
            return []
        return [(dp_id, flows.packet_out_to_table(in_port, data))]

    def _arp_in(self, dp_id: int, in_port: int, req, now: float) -> Out:
        if req is None:
            self.counters["bad_packets"] += 1
            return []
        if req.opcode == arp_pkt.ARP_REQUEST:
            origin = self._arp_floods.get((req.src_mac.lower(), req.dst_ip))
            if origin and origin[:2] != (dp_id, in_port) and now - origin[2] < ARP_ECHO_WINDOW_S:
                self.counters["arp_echoes_dropped"] += 1
                return []
        out = self._learn(req.src_mac, dp_id, in_port, req.src_ip, now)
        if req.opcode == arp_pkt.ARP_REQUEST and req.src_ip != req.dst_ip:
            claimed = self._claimed(req.dst_ip)
            if claimed:
                self.counters["proxy_arp_replies"] += 1
                frame = arp.reply(req.src_mac, req.src_ip, claimed, req.dst_ip)
                return out + [(dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", in_port)], frame))]
            target = self.hosts.by_ip(req.dst_ip)
            if target is not None:
                self.counters["proxy_arp_replies"] += 1
                frame = arp.reply(req.src_mac, req.src_ip, target.mac, req.dst_ip)
                return out + [(dp_id, flows.packet_out(ofp.OFPP_CONTROLLER, [("output", in_port)], frame))]
            return out + self._flood_to_hosts(dp_id, in_port, req)
        return out

    def _flood_to_hosts(self, src_dp: int, src_port: int, req) -> Out:
        """An ARP for an unknown address goes to every port that is not a known link."""
        self.counters["arp_floods"] += 1
        self._arp_floods = {k: v for k, v in self._arp_floods.items()
                            if v[2] > self._clock - ARP_ECHO_WINDOW_S}
        self._arp_floods[(req.src_mac.lower(), req.dst_ip)] = (src_dp, src_port, self._clock)
        pkt = packet.Packet()
        pkt.add_protocol(ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=req.src_mac,
                                           ethertype=ETH_TYPE_ARP))
        pkt.add_protocol(arp_pkt.arp(opcode=arp_pkt.ARP_REQUEST, src_mac=req.src_mac,
                                     src_ip=req.src_ip, dst_mac="00:00:00:00:00:00", dst_ip=req.dst_ip))
        pkt.serialize()
        data = bytes(pkt.data)
        out: Out = []
        for dp_id in sorted(self.switches):
            switch = self.topology.switches.get(dp_id)
            if switch is None:
                continue
            links = self.topology.link_ports(dp_id)
            ports = [p.port_no for p in switch.ports.values()
                     if p.up and p.port_no not in links and not p.lldp_seen
                     and (dp_id, p.port_no) != (src_dp, src_port)]
            if ports:
                out.append((dp_id, flows.packet_out(ofp.OFPP_CONTROLLER,
                                                    [("output", p) for p in sorted(ports)], data)))
        return out

    def _learn(self, mac: str, dp_id: int, port_no: int, ip: str | None, now: float) -> Out:
        if _is_multicast(mac):
            return []
        if ip and self._claimed(ip):
            # An app's virtual address (a slice VIP rewritten onto a reply): not the host's own.
            ip = None
        events = self.hosts.learn(mac, dp_id, port_no, ip, now)
        if not events:
            return []
        self._publish(events)
        if any(e.kind == "HOST_MOVE" for e in events):
            return self._after_topology_change(now)
        if self.providers:
            # Providers may be waiting for this host (a slice member) to place their rules.
            return self._sync(now)
        return []

    def _claimed(self, ip: str) -> str | None:
        """The MAC a provider answers ARP for ``ip`` with, if some provider claims it."""
        for name in sorted(self.providers):
            try:
                mac = self.providers[name].claims(ip)
            except Exception:  # noqa: BLE001 - one app's bug must not break ARP for the others
                self.counters["provider_errors"] += 1
                LOG.exception("provider %s failed to answer for %s", name, ip)
                continue
            if mac:
                return mac
        return None

    def _route(self, src: str, dst: str, dp_id: int, in_port: int, data: bytes, now: float) -> Out:
        if self.hosts.get(dst) is None:
            self.counters["unknown_destination"] += 1
            return []
        path = self.forwarding.ensure(src, dst)
        if path is None:
            self.counters["no_path"] += 1
            LOG.info("no path from %s to %s", src, dst)
            return []
        out = self._sync(now, only=self.forwarding.dps_of((src.lower(), dst.lower())))
        return out + [(dp_id, flows.packet_out_to_table(in_port, data))]


def _frame_problem(pkt: packet.Packet, eth) -> str | None:
    """Why a frame from the network cannot be trusted for learning, or None."""
    if eth is None:
        return "no Ethernet header"
    if eth.ethertype == ETH_TYPE_LLDP:
        return None
    if _is_multicast(eth.src) or eth.src == "00:00:00:00:00:00":
        return f"source MAC {eth.src} is not a unicast host address"
    if eth.ethertype == ETH_TYPE_ARP:
        req = pkt.get_protocol(arp_pkt.arp)
        if req is None:
            return "ARP frame without a parseable ARP body"
        if (req.hwtype, req.proto, req.hlen, req.plen) != (1, 0x0800, 6, 4):
            return (f"ARP for hwtype {req.hwtype} proto {req.proto:#x} hlen {req.hlen} plen {req.plen}"
                    " (only Ethernet/IPv4 is served)")
        if req.opcode not in (arp_pkt.ARP_REQUEST, arp_pkt.ARP_REPLY):
            return f"ARP opcode {req.opcode}"
        if req.src_mac.lower() != eth.src.lower():
            return f"ARP sender {req.src_mac} differs from Ethernet source {eth.src}"
    elif eth.ethertype == ETH_TYPE_IP:
        ip = pkt.get_protocol(ipv4.ipv4)
        if ip is None:
            return "IPv4 frame without a parseable IPv4 header"
        if ip.version != 4 or ip.header_length < 5 or ip.total_length < ip.header_length * 4:
            return f"IPv4 header inconsistent (version {ip.version}, length {ip.total_length})"
    return None


def _is_multicast(mac: str) -> bool:
    return bool(int(mac.split(":")[0], 16) & 1)
