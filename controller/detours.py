"""Fast-failover local protection for forwarding paths: detours, their VLAN tags and
the OpenFlow fast-failover groups that switch to them without the controller.

For a host pair's path s_1 .. s_n and every hop s_i whose out port leads over a link
to s_i+1, the *detour* is the cheapest path from s_i to the destination host's switch
s_n in the graph without that link (both directions; ``Topology.detour``). Where one
exists, s_i's flow for the pair outputs to a fast-failover group instead of the port::

    group ff   bucket watch=primary  output:primary
               bucket watch=backup   push_vlan, set_field vlan_vid=TAG, output:backup

Open vSwitch picks the first bucket whose watch port is live, so the moment the
primary port goes down (carrier lost) s_i sends the pair's frames onto the detour,
tagged. Every other switch of the detour holds one flow per (destination host, TAG)
in table ``forward``: ``eth_dst, vlan_vid=TAG -> output`` along the detour, and at the
destination's switch ``pop_vlan, output`` to the host. The frame reaches its host
with no controller involved; the controller then sees the port-down, recomputes
every path (new primaries and new detours) and the core sends the difference, new
entries before old ones go (make before break).

Why a tag: a detour may cross switches of the primary path, whose pair flows would
send the frame back towards the dead link. The tag takes the frame off the pair
flows: on every switch a tagged frame goes from ``ingress`` straight to ``forward``
(slice rules already ran at its first switch), where only detour flows carry tagged
frames and a tagged frame without one is dropped, never looped or delivered tagged.
A detour is a simple path, so a frame on it cannot loop; a second failure on the
detour drops it until the controller has recomputed.

A detour may have to turn back the way the frame came (in a ring it always does):
then the backup bucket outputs to ``in_port``, since OpenFlow drops a plain output to
the port a frame arrived on. A pair's frames reach a switch's pair flow only through
the hop's in port (tagged frames never use pair flows), so that is exact.

TAG names the protected link (the switch pair), so one detour flow serves every
source towards a host, and the detour for (link, destination) is the same whichever
pair asks. Tags are VLAN ids 1..2047 (the upper half labels traffic-engineered
paths, ``apps.te.dataplane``): a pair's is its CRC-32 slot, or the next free
slot after the pairs that sort before it took theirs, so the same links always get
the same tags (a controller restart finds the switches already right); a tag moves
only when a colliding link appears or goes. Groups are shared per switch by
(primary port, backup port, turning back or not), which fixes the tag too; their id
packs those (11 bits per port) in the forwarding owner's range, so a port above 2047
goes unprotected.

Limits: this protects links, not switches (a detour may cross the far end of the
protected link); a bridge link has no detour and its hop a plain output; hosts must
not send 802.1Q-tagged frames while fast failover is on (they would be taken for
detour traffic and dropped).
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass

from controller import cookies
from controller.flows import OFPVID_PRESENT, FlowSpec, flow
from controller.groups import Bucket, GroupSpec

TAG_MIN, TAG_MAX = 1, 2047      # 2048..4094 carry traffic-engineered paths (apps.te.dataplane)
N_TAGS = TAG_MAX - TAG_MIN + 1
PORT_BITS = 11
PRIO_DETOUR = 1200          # above the pair flows (forwarding.PRIO_PATH) ...
PRIO_TAGGED_DROP = 1100     # ... and so is the drop of tagged frames with no detour flow
PRIO_TAGGED_INGRESS = 1500  # ingress: tagged frames skip the slice table
ANY_TAG = (OFPVID_PRESENT, OFPVID_PRESENT)
COOKIE = cookies.cookie("forwarding")


@dataclass(frozen=True)
class Detour:
    """Where a protecting switch sends a pair's frames when its primary port is down."""

    tag: int                                # VLAN id carried along it: names the protected link
    steps: tuple[tuple[int, int], ...]      # (dp_id, out_port): the protecting switch's backup
                                            # port first, the destination host's port last

    @property
    def backup_port(self) -> int:
        return self.steps[0][1]


def link_tags(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """A VLAN id for every linked switch pair ``(a, b)``, ``a < b`` (module docstring).
    Pairs beyond the 2047 ids get none (they stay unprotected)."""
    tags: dict[tuple[int, int], int] = {}
    used: set[int] = set()
    for a, b in sorted(pairs):
        slot = zlib.crc32(f"{a}-{b}".encode()) % N_TAGS
        for i in range(N_TAGS):
            tag = TAG_MIN + (slot + i) % N_TAGS
            if tag not in used:
                used.add(tag)
                tags[(a, b)] = tag
                break
    return tags


def group_id(out_port: int, backup_port: int, turn_back: bool) -> int | None:
    """The fast-failover group for this (primary port, backup port, backup is the in
    port) on a switch, or None if a port number does not fit in its bits."""
    if not (0 < out_port < 1 << PORT_BITS and 0 < backup_port < 1 << PORT_BITS):
        return None
    return cookies.group_id("forwarding", (turn_back << 2 * PORT_BITS) | out_port << PORT_BITS | backup_port)


@functools.lru_cache(maxsize=1 << 14)
def ff_group(gid: int, out_port: int, backup_port: int, tag: int, turn_back: bool) -> GroupSpec:
    """Primary port while it is live, else tag and take the detour (back out of the
    in port when it starts there)."""
    return GroupSpec(gid, "ff", (
        Bucket(watch_port=out_port, actions=(("output", out_port),)),
        Bucket(watch_port=backup_port, actions=(("push_vlan", 0x8100),
                                                ("set_field", "vlan_vid", OFPVID_PRESENT | tag),
                                                ("in_port",) if turn_back else ("output", backup_port)))))


@functools.lru_cache(maxsize=1 << 16)
def detour_flows(dst_mac: str, detour: Detour) -> tuple[tuple[int, FlowSpec], ...]:
    """``(dp_id, flow)`` carrying tagged frames for ``dst_mac`` along the detour after
    its protecting switch; the last one untags and delivers."""
    match = {"eth_dst": dst_mac, "vlan_vid": OFPVID_PRESENT | detour.tag}
    last = len(detour.steps) - 1
    return tuple((dp_id, flow("forward", PRIO_DETOUR, match,
                              [("pop_vlan",), ("output", port)] if i == last else [("output", port)],
                              cookie=COOKIE))
                 for i, (dp_id, port) in enumerate(detour.steps) if i > 0)


# On every switch while fast failover is on: tagged frames are detour traffic.
GUARD_FLOWS: tuple[FlowSpec, ...] = (
    flow("ingress", PRIO_TAGGED_INGRESS, {"vlan_vid": ANY_TAG}, goto="forward", cookie=COOKIE),
    flow("forward", PRIO_TAGGED_DROP, {"vlan_vid": ANY_TAG}, [], cookie=COOKIE),
)
