"""Connection pins with NX learn on a real Open vSwitch bridge (userspace datapath).

The real controller process loads the provider below (``provider``): VIP traffic goes
slice -> lb, where a select group picks a member; its bucket marks the member in reg6
and resubmits to table member, whose flow pins the connection (learn into lb, cookie
in the ``learned`` range), rewrites it and sends it on. Real TCP-shaped frames from a
veth show that later packets follow the pin, that scaling the group from 2 to 4
members (a controller restart reconciling the bridge) moves no pinned connection and
deletes no learned flow, and that the group and the learning flows read back from the
bridge equal the specs installed. A second test shows why the learn is not in the
bucket: Open vSwitch accepts a learn there and never runs it.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest
from os_ken.lib.packet import ethernet, ipv4, packet, tcp
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto.ofproto_protocol import ProtocolDesc

from apps.slices import SPEC as SLICES
from controller import cookies, flows, groups
from controller.appbase import App
from controller.desired import Desired
from controller.flows import flow
from controller.groups import Bucket, GroupSpec
from tests.lib.ovs_lab import controlled_bridge, run, wait_for

if os.geteuid() != 0:
    pytest.skip("integration tests need root (Open vSwitch)", allow_module_level=True)

# ---- the provider the controller process loads -----------------------------------------------

DP_ID = 0xAC
VIP, VIP_MAC = "10.78.0.100", "02:78:00:00:00:64"
MEMBERS = {k: (k, f"02:78:00:00:00:0{k}", f"10.78.0.{k}") for k in (1, 2, 3, 4)}  # key: (port, MAC, IPv4)
CLIENT_PORT = 5
GROUP_ID = cookies.group_id("slices", 1)
COOKIE = cookies.cookie("slices", 1)
TCP_VIP = {"eth_type": 0x0800, "ip_proto": 6, "ipv4_dst": VIP}
MEMBERS_FILE = "FORESIGHT_TEST_LEARN_MEMBERS"     # env: file holding how many members are active


def member_flow(key: int) -> flows.FlowSpec:
    port, mac, ip = MEMBERS[key]
    pin = flows.learn(table="lb", priority=3000, cookie=cookies.cookie("learned", key), idle_timeout=60,
                      fin_idle_timeout=2, fixed=TCP_VIP, copied=("ipv4_src", "tcp_src", "tcp_dst"),
                      loads={"eth_dst": mac, "ipv4_dst": ip}, output=port)
    return flow("member", 100, {**TCP_VIP, "reg6": key},
                [("learn", pin), ("set_field", "eth_dst", mac), ("set_field", "ipv4_dst", ip),
                 ("output", port)], cookie=COOKIE)


def entries(n_members: int) -> Desired:
    keys = range(1, n_members + 1)
    group = GroupSpec(GROUP_ID, "select", tuple(
        Bucket(actions=(("set_field", "reg6", k), ("resubmit", "member"))) for k in keys))
    specs = [flow("classify", 100, {"eth_type": 0x0800, "ipv4_dst": VIP}, goto="lb", cookie=COOKIE),
             flow("lb", 200, TCP_VIP, [("group", GROUP_ID)], cookie=COOKIE)]
    return Desired(tuple(specs + [member_flow(k) for k in keys]), (group,))


class PinnedVip(App):
    """Stands in for the slices app (it registers the owner whose ranges this uses)."""

    name = SLICES.name

    def desired(self, dp_id: int, now: float) -> Desired:
        if dp_id != DP_ID:
            return Desired()
        return entries(int(Path(os.environ[MEMBERS_FILE]).read_text()))


def provider(view, resync) -> PinnedVip:
    return PinnedVip(view, resync)


# ---- reading the bridge -----------------------------------------------------------------------

class Mgmt(contextlib.AbstractContextManager):
    """An OpenFlow 1.3 session on a bridge's management socket (what ovs-ofctl uses),
    for multipart dumps parsed by os-ken."""

    def __init__(self, bridge: str):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(5.0)
        self.sock.connect(f"/var/run/openvswitch/{bridge}.mgmt")
        self.sock.sendall(struct.pack("!BBHI", ofp.OFP_VERSION, ofp.OFPT_HELLO, 8, 1))
        self._message()

    def __exit__(self, *exc) -> None:
        self.sock.close()

    def _read(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("bridge closed the management connection")
            buf += chunk
        return buf

    def _message(self):
        head = self._read(8)
        buf = head + self._read(struct.unpack("!H", head[2:4])[0] - 8)
        version, msg_type, length, xid = ofproto_parser.header(buf)
        return ofproto_parser.msg(ProtocolDesc(ofp.OFP_VERSION), version, msg_type, length, xid, buf)

    def dump(self, request) -> list:
        request.datapath = ProtocolDesc(ofp.OFP_VERSION)
        request.set_xid(2)
        request.serialize()
        self.sock.sendall(bytes(request.buf))
        body = []
        while True:
            msg = self._message()
            if msg.msg_type == ofp.OFPT_ERROR:
                raise AssertionError(f"bridge refused {type(request).__name__}: {msg}")
            if msg.msg_type == ofp.OFPT_MULTIPART_REPLY:
                body += msg.body
                if not msg.flags & ofp.OFPMPF_REPLY_MORE:
                    return body


def _learned(bridge: str) -> list[str]:
    out = run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge, "table=4")
    return [line for line in out.splitlines() if "cookie=0xf05" in line]


# ---- frames -----------------------------------------------------------------------------------

def _tcp_frame(i: int, bits: int) -> bytes:
    pkt = packet.Packet()
    pkt.add_protocol(ethernet.ethernet(dst=VIP_MAC, src="02:78:00:00:01:01", ethertype=0x0800))
    pkt.add_protocol(ipv4.ipv4(src=f"10.78.1.{1 + i % 200}", dst=VIP, proto=6))
    pkt.add_protocol(tcp.tcp(src_port=41000 + i, dst_port=80, seq=1, bits=bits))
    pkt.add_protocol(b"foresight")
    pkt.serialize()
    return bytes(pkt.data)


def _send(host_ifs: dict, connections, bits: int) -> dict[int, int]:
    """Send one frame per connection from the client; {connection: member port it reached},
    each frame checked to be rewritten to that member."""
    reached: dict[int, int] = {}
    sockets = {}
    try:
        for port in MEMBERS:
            sockets[port] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
            sockets[port].bind((host_ifs[port], 0))
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as client:
            client.bind((host_ifs[CLIENT_PORT], 0))
            for i in connections:
                client.send(_tcp_frame(i, bits))
                time.sleep(0.01)    # one upcall at a time: each first packet learns its pin
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and len(reached) < len(connections):
            ready, _, _ = select.select(list(sockets.values()), [], [], 0.2)
            for port, sock in sockets.items():
                if sock not in ready:
                    continue
                pkt = packet.Packet(sock.recv(2048))
                seg = pkt.get_protocol(tcp.tcp)
                if seg is None or seg.dst_port != 80 or seg.bits != bits:
                    continue
                assert seg.src_port - 41000 not in reached, "a frame reached two members"
                assert (pkt.get_protocol(ethernet.ethernet).dst, pkt.get_protocol(ipv4.ipv4).dst) \
                    == MEMBERS[port][1:]
                reached[seg.src_port - 41000] = port
    finally:
        for sock in sockets.values():
            sock.close()
    assert sorted(reached) == sorted(connections), f"lost: {sorted(set(connections) - set(reached))}"
    return reached


# ---- tests ------------------------------------------------------------------------------------

@pytest.fixture
def pinned_vip(tmp_path, monkeypatch):
    members_file = tmp_path / "members"
    members_file.write_text("2")
    monkeypatch.setenv(MEMBERS_FILE, str(members_file))    # the controller process inherits it
    tag = f"{os.getpid() % 100000}"
    veths = [(f"fsl{tag}s{n}", f"fsl{tag}h{n}", n) for n in (*MEMBERS, CLIENT_PORT)]
    config = {"controller": {"providers": ["tests.integration.test_ovs_learn:provider"],
                             "discovery": {"edge_after_s": 1.0}}}
    with controlled_bridge(f"fsl{tag}", DP_ID, config, veths, no_ipv6=True) as (bridge, host_ifs, controller):
        yield bridge, host_ifs, controller, members_file


def _installed(bridge: str, n_members: int) -> bool:
    out = run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows", bridge, "table=5")
    return out.count("learn(table=4") == n_members


def test_pins_hold_connections_while_the_group_scales_from_2_to_4(pinned_vip):
    bridge, host_ifs, controller, members_file = pinned_vip
    wait_for(lambda: _installed(bridge, 2), what="group and member flows")

    # What the bridge holds reads back equal to the specs that were installed.
    with Mgmt(bridge) as mgmt:
        (group,) = [g for g in mgmt.dump(groups.desc_request()) if g.group_id == GROUP_ID]
        # Table 5's own flows (the pipeline's catch-all is not the provider's).
        dumped = [s for s in mgmt.dump(flows.flow_stats_request())
                  if s.table_id == 5 and cookies.owner_of(s.cookie) != "pipeline"]
    assert groups.from_stats(group) == entries(2).groups[0]
    assert sorted(map(flows.from_stats, dumped), key=str) == sorted(map(member_flow, (1, 2)), key=str)

    # First packets pick a member and pin their connection in table 4.
    connections = range(16)
    first = _send(host_ifs, connections, tcp.TCP_SYN)
    assert set(first.values()) == {1, 2}
    learned = wait_for(lambda: len(_learned(bridge)) == len(connections) and _learned(bridge),
                       what="a learned pin per connection")
    line = next(f for f in learned if "tp_src=41000," in f)
    assert re.search(rf"cookie=0xf0500000000000{first[0]}, .*table=4, .*idle_timeout=60, priority=3000,"
                     rf"tcp,nw_src=10\.78\.1\.1,nw_dst={VIP},tp_src=41000,tp_dst=80 "
                     rf"actions=fin_timeout\(idle_timeout=2\),load:.*->NXM_OF_ETH_DST\[\],"
                     rf"load:.*->NXM_OF_IP_DST\[\],output:{first[0]}$", line), line
    assert _send(host_ifs, connections, tcp.TCP_ACK) == first

    # Scale to 4 members: a restarted controller modifies the group in place, adds the
    # two member flows and leaves the learned pins alone.
    time.sleep(1.5)             # the tick loop has saved topology and ports: only our change differs
    controller.stop()
    members_file.write_text("4")
    controller.start()
    wait_for(lambda: _installed(bridge, 4), timeout_s=30, what="the group scaled to 4 members")
    wait_for(lambda: controller.client.status().counters.get("reconciliations", 0) >= 1,
             what="reconciliation")
    counters = controller.client.status().counters
    want = {"group_modifies": 1, "flow_adds": 2, "flow_deletes": 0, "group_deletes": 0, "openflow_errors": 0}
    assert {k: counters.get(k, 0) for k in want} == want
    assert len(_learned(bridge)) == len(connections)
    with Mgmt(bridge) as mgmt:
        (group,) = [g for g in mgmt.dump(groups.desc_request()) if g.group_id == GROUP_ID]
    assert groups.from_stats(group) == entries(4).groups[0]

    # Pinned connections stay where they were; new ones spread over all four members.
    assert _send(host_ifs, connections, tcp.TCP_ACK) == first
    fresh = _send(host_ifs, range(100, 132), tcp.TCP_SYN)
    assert set(fresh.values()) & {3, 4}, fresh


@contextlib.contextmanager
def _bare_bridge(name: str):
    run("ovs-vsctl", "--", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
        "fail_mode=secure", "protocols=OpenFlow13")
    try:
        yield name
    finally:
        subprocess.run(["ovs-vsctl", "--if-exists", "del-br", name], capture_output=True)


def test_ovs_never_runs_a_learn_in_a_bucket_but_does_in_a_flow():
    """Why buckets resubmit: OVS runs a bucket's actions as an action set, learn dropped."""
    learn = "learn(table=4,priority=3000,cookie=0xf05000000000009,eth_type=0x800,NXM_OF_IP_SRC[])"
    with _bare_bridge(f"fsq{os.getpid() % 100000}") as bridge:
        ofctl = ("ovs-ofctl", "-O", "OpenFlow13")
        run(*ofctl, "add-group", bridge, f"group_id=1,type=indirect,bucket=actions={learn},output:LOCAL")
        run(*ofctl, "add-group", bridge,
            "group_id=2,type=indirect,bucket=actions=set_field:0x2->reg6,resubmit(,5)")
        run(*ofctl, "add-flow", bridge, "table=0,ip,nw_src=10.78.1.1,actions=group:1")
        run(*ofctl, "add-flow", bridge, "table=0,ip,nw_src=10.78.1.2,actions=group:2")
        run(*ofctl, "add-flow", bridge, f"table=5,ip,reg6=2,actions={learn},output:LOCAL")
        assert learn in run(*ofctl, "dump-groups", bridge)      # accepted and dumped back ...
        for src in ("10.78.1.1", "10.78.1.2"):
            run("ovs-appctl", "ofproto/trace", bridge, f"in_port=LOCAL,ip,nw_src={src},nw_dst={VIP}",
                "-generate")
        # ... but only the learn reached through resubmit ran.
        assert [re.search(r"nw_src=[\d.]+", f).group() for f in _learned(bridge)] == ["nw_src=10.78.1.2"]
