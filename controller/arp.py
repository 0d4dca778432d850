"""ARP frames the controller answers with (proxy ARP)."""

from __future__ import annotations

from os_ken.lib.packet import arp, ethernet, packet
from os_ken.lib.packet.ether_types import ETH_TYPE_ARP


def reply(requester_mac: str, requester_ip: str, target_mac: str, target_ip: str) -> bytes:
    """The ARP reply the target would have sent to the requester."""
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=requester_mac, src=target_mac, ethertype=ETH_TYPE_ARP))
    pkt.add_protocol(arp.arp(opcode=arp.ARP_REPLY, src_mac=target_mac, src_ip=target_ip,
                             dst_mac=requester_mac, dst_ip=requester_ip))
    pkt.serialize()
    return bytes(pkt.data)
