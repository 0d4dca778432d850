"""LLDP frames for link discovery, built and parsed with os-ken's packet library.

Each frame carries the sending switch (chassis id ``dpid:<16 hex>``) and port
number (port id, 4 bytes big-endian), so the receiving switch's packet-in names
one directed link. Frames from other LLDP speakers parse to ``None``.
"""

from __future__ import annotations

import struct

from os_ken.lib.packet import ethernet, lldp, packet

CHASSIS_PREFIX = b"dpid:"
SYSTEM_NAME = b"foresight"


def build(dp_id: int, port_no: int, hw_addr: str) -> bytes:
    tlvs = (
        lldp.ChassisID(subtype=lldp.ChassisID.SUB_LOCALLY_ASSIGNED,
                       chassis_id=CHASSIS_PREFIX + b"%016x" % dp_id),
        lldp.PortID(subtype=lldp.PortID.SUB_PORT_COMPONENT, port_id=struct.pack("!I", port_no)),
        lldp.TTL(ttl=120),
        lldp.SystemName(system_name=SYSTEM_NAME),
        lldp.End(),
    )
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=lldp.LLDP_MAC_NEAREST_BRIDGE, src=hw_addr,
                                       ethertype=ethernet.ether.ETH_TYPE_LLDP))
    pkt.add_protocol(lldp.lldp(tlvs))
    pkt.serialize()
    return bytes(pkt.data)


def parse(pkt: packet.Packet) -> tuple[int, int] | None:
    """(dp_id, port_no) of the sender, or None if this is not one of our frames."""
    frame = pkt.get_protocol(lldp.lldp)
    if frame is None or len(frame.tlvs) < 2:
        return None
    chassis, port = frame.tlvs[0], frame.tlvs[1]
    if not isinstance(chassis, lldp.ChassisID) or not isinstance(port, lldp.PortID):
        return None
    if chassis.subtype != lldp.ChassisID.SUB_LOCALLY_ASSIGNED or \
            not chassis.chassis_id.startswith(CHASSIS_PREFIX):
        return None
    if port.subtype != lldp.PortID.SUB_PORT_COMPONENT or len(port.port_id) != 4:
        return None
    try:
        dp_id = int(chassis.chassis_id[len(CHASSIS_PREFIX):], 16)
    except ValueError:
        return None
    return dp_id, struct.unpack("!I", port.port_id)[0]
