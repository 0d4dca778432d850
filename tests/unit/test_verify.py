"""The data-plane verifier (apps.provisioning.verify): hand-worked loops, black holes,
isolation holes and dangling references; incremental answers equal to a fresh
verifier's; and agreement with the fake switches' own walk of real frames through
the flows the controller (and its apps) install."""

from __future__ import annotations

import random

import pytest

from apps.provisioning.verify import Policy, Topology, Verifier, VerifyError, add, delete
from apps.provisioning.walk import WalkCache
from apps.qos.config import QosConfig
from controller import flows as flows_mod
from controller.flows import FlowSpec, flow
from controller.groups import Bucket, GroupSpec
from controller.meters import MeterSpec
from tests.lib import fakeoftable
from tests.lib.app_flows import install_apps
from tests.lib.fakeoftable import FakeNetwork, config_for, hosts_on

IP = 0x0800


# ---- helpers --------------------------------------------------------------------------------

def verifier_of(net: FakeNetwork, policy: Policy | None = None) -> Verifier:
    """A verifier loaded with what the fake switches hold now."""
    v = Verifier(Topology(net.links, net.hosts.values(), down=[k for k, up in net.up.items() if not up]),
                 policy=policy)
    for dp, sw in net.switches.items():
        v.load(dp, sw.specs(), sw.group_specs(), sw.meter_specs())
    return v


def install(net: FakeNetwork, dp: int, *specs) -> None:
    """Put hand-made entries straight on a fake switch (no controller)."""
    for spec in specs:
        if isinstance(spec, GroupSpec):
            from controller import groups
            net.switches[dp].apply(groups.to_add(spec))
        else:
            net.switches[dp].apply(flows_mod.to_flowmod(spec))


def hand_made(links, *where) -> tuple[FakeNetwork, Verifier]:
    """Fake switches without a controller (so nothing is installed but what a test puts)."""
    hosts = hosts_on(*where)
    return FakeNetwork(links, hosts), Verifier(Topology(links, hosts))


def by_check(findings, check: str) -> list:
    return [f for f in findings if f.check == check]


class Clock:
    now = 1000.0

    def __call__(self):
        return self.now


def controller_network(links, where, apps=("qos", "te", "slices")) -> FakeNetwork:
    """A started FakeNetwork with the controller and the given apps, every host pair's
    path installed (first packets both ways)."""
    hosts = hosts_on(*where)
    config = config_for(links, capacities={(a, b): 10 for a, _, b, _ in links})
    if "qos" in apps:
        config = config.model_copy(update={"qos": QosConfig.model_validate({"classes": [
            {"name": "ef", "dscp": [46], "rank": 0},
            {"name": "best-effort", "dscp": [0], "rank": 2, "rate_mbps": 6}]})})
    net = install_apps(FakeNetwork(links, hosts, config).start(), apps, clock=Clock())
    net.clear_inboxes()
    return net


def oracle(net: FakeNetwork, host: str, headers: dict) -> dict:
    """What the fake switches do with one frame: the ground truth."""
    h = net.host(host)
    fields = {k: v for k, v in headers.items() if not k.startswith(("arp_", "tun"))}
    try:
        walk = net.walk(h.dp_id, h.port_no, fields)
    except fakeoftable.LoopError:
        return {"loop": True}
    except fakeoftable.FakeSwitchError:
        return None         # two flows of one priority match it: the fake refuses to pick
    return {"delivered": sorted(walk.delivered), "controller": sorted({dp for dp, _ in walk.to_controller}),
            "dropped": sorted({dp for dp, _ in walk.dropped}), "loop": False,
            "switches": sorted({dp for dp, _ in walk.entered})}


def agrees(mine: dict, truth: dict | None, select: bool) -> bool:
    if truth is None:
        return True
    if truth["loop"] or mine["loop"]:
        return truth["loop"] == mine["loop"]
    if select:      # the fake hashes onto one bucket; the verifier follows every bucket
        return set(truth["delivered"]) <= set(mine["delivered"]) \
            and set(truth["switches"]) <= set(mine["switches"])
    return all(mine[k] == truth[k] for k in ("delivered", "controller", "dropped", "switches"))


# ---- hand-worked examples --------------------------------------------------------------------

TWO_LINKS = [(1, 1, 2, 1), (1, 2, 2, 2)]        # s1 and s2, joined twice
H2 = "02:00:00:00:00:02"


def test_two_flows_pointing_at_each_other_make_a_loop_found_with_its_way_and_a_frame():
    net, v = hand_made(TWO_LINKS, ("h1", 1, 3), ("h2", 2, 3))
    to_s2 = flow("ingress", 100, {"eth_dst": H2}, [("output", 1)])
    back = flow("ingress", 100, {"eth_dst": H2}, [("output", 2)])
    install(net, 1, to_s2)
    install(net, 2, back)
    v.load(1, [to_s2])
    v.load(2, [back])
    loops = by_check(v.findings(), "loop")
    assert sorted(f.detail.split(":")[0] for f in loops) == ["from h1", "from h2"]   # h2's own frames too
    (loop,) = [f for f in loops if f.detail.startswith("from h1")]
    assert set(loop.switches) == {1, 2}
    assert loop.table == "ingress" and "priority 100" in loop.flow and H2 in loop.flow
    assert loop.example["eth_dst"] == H2 and loop.example["eth_src"] == "02:00:00:00:00:01"
    assert "s1:1" in loop.detail or "s2:1" in loop.detail
    assert str(loop).startswith("loop: from h1")
    with pytest.raises(fakeoftable.LoopError):      # the fake switches agree: that frame loops
        net.walk(1, 3, loop.example)
    # Pointing s2 at h2 ends it, and the report says so.
    report = v.apply(add(2, flow("ingress", 100, {"eth_dst": H2}, [("output", 3)])))
    assert [f.check for f in report.removed] == ["loop", "loop"] and not by_check(report.added, "loop")
    frame = {"eth_dst": H2, "eth_src": "02:00:00:00:00:01", "eth_type": IP}
    assert v.outcome("h1", frame)["delivered"] == ["h2"]


def test_a_deleted_path_flow_is_a_black_hole_and_breaks_reach_until_it_is_back():
    net = controller_network(fakeoftable.TRIANGLE_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)), apps=())
    v = verifier_of(net, Policy.all_pairs(net.hosts))
    assert v.check_all().added == []
    h1, h2 = net.host("h1"), net.host("h2")
    (last,) = [s for s in net.switches[2].specs()
               if s.table == "forward" and s.match_dict.get("eth_src") == h1.mac
               and s.match_dict.get("eth_dst") == h2.mac]
    report = v.apply(delete(2, last))
    holes = by_check(report.added, "black-hole")
    assert holes and all(f.switches == (2,) and f.table == "forward" for f in holes)
    assert holes[0].flow is not None and "priority 0" in holes[0].flow        # the table's catch-all
    assert holes[0].example["eth_dst"] == h2.mac and holes[0].example["eth_src"] == h1.mac
    (reach,) = by_check(report.added, "reach")
    assert reach.detail.startswith("h1 -> h2: sent to the controller at s2")
    assert not v.reaches("h1", "h2") and v.reaches("h2", "h1")
    # The fake switch without that flow does the same to the example frame.
    net.switches[2].apply(flows_mod.to_delete(last))
    assert oracle(net, "h1", holes[0].example)["controller"] == [2]
    back = v.apply(add(2, last))
    assert {f.check for f in back.removed} == {"black-hole", "reach"} and back.added == []
    assert v.findings() == []


def test_a_too_broad_match_opens_an_isolation_hole_and_its_narrowing_closes_it():
    links = [(1, 1, 2, 1)]
    net, v = hand_made(links, ("h1", 1, 3), ("h2", 2, 3), ("h3", 2, 4))
    h2 = net.host("h2")
    uplink = flow("ingress", 10, {}, [("output", 1)])
    to_h2 = flow("ingress", 100, {"eth_dst": h2.mac}, [("output", 3)])
    broad = flow("ingress", 10, {}, [("output", 4)])           # meant for h2's frames only
    narrow = flow("ingress", 10, {"in_port": 3}, [("output", 4)])
    h1 = net.host("h1")
    v.load(1, [uplink, flow("ingress", 100, {"eth_dst": h1.mac}, [("output", 3)])])
    v.load(2, [to_h2, broad, flow("ingress", 100, {"in_port": 3, "eth_dst": h1.mac}, [("output", 1)])])
    policy = Policy(reach=(("h1", "h2"),), isolate=(frozenset({"h1"}), frozenset({"h3"})))
    report = v.check_all(policy)
    (hole,) = [f for f in by_check(report.added, "isolation") if f.detail.startswith("h1 reaches h3")]
    assert hole.switches == (1, 2) and hole.table == "ingress" and hole.flow == "priority 10 match *"
    assert hole.example["eth_src"] == net.host("h1").mac and hole.example["eth_dst"] != h2.mac
    assert not by_check(report.added, "reach")
    changed = v.apply(delete(2, broad))
    assert "isolation" in {f.check for f in changed.removed}
    changed = v.apply(add(2, narrow))
    assert not by_check(changed.added, "isolation") and not by_check(v.findings(), "isolation")
    assert v.reaches("h1", "h2")


def test_a_flow_naming_a_missing_group_or_meter_is_found_until_they_exist():
    net, v = hand_made([(1, 1, 2, 1)], ("h1", 1, 3), ("h2", 2, 3))
    group = GroupSpec(0x02000009, "indirect", (Bucket(actions=(("output", 1),)),))
    meter = MeterSpec(0x07000001, rate_kbps=1000)
    metered = flow("ingress", 100, {"eth_dst": H2}, [("group", group.group_id)], meter=meter.meter_id)
    v.load(1, [metered])
    v.load(2, [flow("ingress", 100, {"eth_dst": H2}, [("output", 3)])])
    found = v.findings()
    (no_group,) = by_check(found, "missing-group")
    (no_meter,) = by_check(found, "missing-meter")
    assert no_group.switches == (1,) and "0x2000009" in no_group.detail and "priority 100" in no_group.flow
    assert no_meter.switches == (1,) and "0x7000001" in no_meter.detail
    (hole,) = [f for f in by_check(found, "black-hole") if "group" in f.detail]
    assert "group 0x2000009, which does not exist" in hole.detail and hole.example["eth_dst"] == H2
    assert [f.detail for f in by_check(found, "black-hole") if f is not hole] == [
        "from h2 to h1: no flow takes it"]          # nothing routes h1 on s2
    assert v.apply(add(1, meter)).removed == [no_meter]
    report = v.apply(add(1, group))
    assert {f.check for f in report.removed} == {"missing-group", "black-hole"}
    assert len(v.findings()) == 1
    assert v.outcome("h1", {"eth_dst": H2, "eth_type": IP})["delivered"] == ["h2"]
    gone = v.apply(delete(1, group))
    assert {f.check for f in gone.added} == {"missing-group", "black-hole"}


def test_refused_updates_name_what_is_wrong_and_change_nothing():
    net = controller_network(fakeoftable.TRIANGLE_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)), apps=())
    v = verifier_of(net, Policy.all_pairs(net.hosts))
    before = (v.findings(), sorted(str((c.ingress, c.events)) for c in v.classes.values()))
    some = next(iter(net.switches[1].specs()))
    bad = [
        (add(9, some), "switch 9 is not in the topology"),
        (add(1, FlowSpec("ingress", 5, (("eth_dst", H2),), goto="nowhere")), "goto 'nowhere'"),
        (add(1, FlowSpec("nowhere", 5, ())), "unknown table 'nowhere'"),
        (add(1, FlowSpec("ingress", 5, (("eth_dst", "not-a-mac"),))), "eth_dst"),
        (add(1, FlowSpec("ingress", 5, (("eth_dst", ("02:00:00:00:00:00", "00:00:00:00:00:ff")),))),
         "not modelled"),
        (add(1, FlowSpec("forward", 5, (("tcp_src", 70000),))), "tcp_src"),
        (add(1, "a flow"), "FlowSpec"),
        (type(add(1, some))(1, "move", some), "'add' or 'delete'"),
    ]
    for update, words in bad:
        with pytest.raises(VerifyError, match=words):
            v.apply(update)
        assert isinstance(VerifyError(""), ValueError)
    after = (v.findings(), sorted(str((c.ingress, c.events)) for c in v.classes.values()))
    assert after == before
    with pytest.raises(VerifyError, match="host 'nobody'"):
        v.check_all(Policy(reach=(("h1", "nobody"),)))


def test_the_same_flow_or_group_again_walks_nothing_and_flooded_frames_share_their_walks():
    net = controller_network(fakeoftable.DIAMOND_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h4", 4, 3)), apps=())
    v = verifier_of(net, Policy.all_pairs(net.hosts))
    assert v.check_all().added == []
    cache = v.walker.cache
    assert cache.hits > 0, "flooded frames of different hosts take cached spanning-tree branches"
    sw = v.switches[1]
    (flood,) = [r.spec for r in sw.tables["flood"].rules.values() if r.spec.priority > 0]
    (group, *_) = sw.groups.values()
    for update in (add(1, flood), add(1, group)):
        report = v.apply(update)
        assert report.rewalked == 0 and report.added == report.removed == []
    # A real change to a flood flow re-walks the flooded classes, and taking it back
    # restores every class and finding.
    before = canonical(v)
    report = v.apply(delete(1, flood))
    assert report.rewalked > 0
    v.apply(add(1, flood))
    assert canonical(v) == before and v.findings() == []


# ---- incremental == from scratch ------------------------------------------------------------

def canonical(v: Verifier) -> set:
    """Classes as (host, way) with rewritten fields spelt as values (atom ids differ between verifiers)."""
    out = set()
    for cls in v.classes.values():
        events = []
        for e in cls.events:
            if e[0] == "v":
                over = tuple((i, v.space.fields[i].example(m)) for i, m in e[6])
                e = e[:6] + (over,)
            events.append(e)
        out.add((cls.ingress, cls.dst, tuple(events)))
    return out


def fresh(v: Verifier, policy: Policy, cached: bool = True) -> Verifier:
    other = Verifier(v.topology, policy=policy)
    if not cached:
        other.walker.cache = WalkCache(limit=0)
    for dp, sw in v.switches.items():
        other.load(dp, [r.spec for t in sw.tables.values() for r in t.rules.values()],
                   sw.groups.values(), sw.meters.values())
    return other


def walks(v: Verifier, cached: bool) -> list:
    """Every host's frames walked, cube by cube, with the verifier's cache as it is or with none."""
    held = v.walker.cache
    if not cached:
        v.walker.cache = WalkCache(limit=0)
    try:
        return sorted((name, cube, events) for name in sorted(v.topology.hosts)
                      for cube, events in v._walk(name, v._host_cube(name)))
    finally:
        v.walker.cache = held


def indexes(v: Verifier) -> dict:
    """Every index of the verifier's classes, as plain sets (empty entries left out)."""
    c = v._classes
    return {"key": {(k[0], k[1], k[2].events, cid) for k, cid in c.by_key.items()},
            "ingress": {(a, cid) for a, cids in c.by_ingress.items() for cid in cids},
            "pair": {(p, cid) for p, cids in c.by_pair.items() for cid in cids},
            "visits": {(t, key, cid, tuple(sorted(map(repr, where))))
                       for t, won in c.visits.items() for key, users in won.items()
                       for cid, where in users.items() if where},
            "groups": {(g, cid) for g, cids in c.group_users.items() for cid in cids},
            "delivering": {(p, cid) for p, cids in c.delivering.items() for cid in cids},
            "findings": {(f, cid) for f, holders in c.findings.items() for cid in holders}}


def rebuilt_indexes(v: Verifier) -> dict:
    """The indexes as they follow from the classes alone."""
    out = {"key": set(), "ingress": set(), "pair": set(), "visits": {}, "groups": set(), "delivering": set(),
           "findings": set()}
    for cid, cls in v.classes.items():
        assert cls.key[:2] == (cls.ingress, cls.dst) and cls.key[2].events == cls.events
        out["key"].add((cls.ingress, cls.dst, cls.events, cid))
        out["ingress"].add((cls.ingress, cid))
        out["pair"].add(((cls.ingress, cls.dst), cid))
        for visit in cls.visits:
            out["visits"].setdefault(((visit[1], visit[2]), visit[3], cid), []).append(visit)
        out["groups"] |= {(g, cid) for g in cls.groups}
        out["delivering"] |= {((cls.ingress, d), cid) for d in cls.delivers}
        out["findings"] |= {(f, cid) for f in cls.findings}
    out["visits"] = {(t, key, cid, tuple(sorted(map(repr, where))))
                     for (t, key, cid), where in out["visits"].items()}
    return out


def ways_hold(v: Verifier) -> None:
    """Every class's cubes, walked afresh from its host with no cache, take its way (classes
    walked again are walked from where they entered the changed switch, their way spliced)."""
    held = v.walker.cache
    v.walker.cache = WalkCache(limit=0)
    try:
        for cls in v.classes.values():
            host = v.topology.hosts[cls.ingress]
            for cube in cls.cubes:
                assert {ev for _, ev in v.walker.from_host(host.dp_id, host.port_no, cube)} == {cls.events}
    finally:
        v.walker.cache = held


def applied(v: Verifier, update) -> None:
    """Apply ``update``; its report must be the difference of the findings before and after."""
    before = v.findings_set()
    report = v.apply(update)
    after = v.findings_set()
    assert set(report.added) == after - before and set(report.removed) == before - after
    assert len(report.added) == len(set(report.added)) and len(report.removed) == len(set(report.removed))


def broad(spec: FlowSpec) -> bool:
    """A flow many classes take: a catch-all, a flood-table flow, multicast to the flood table."""
    return not spec.match or spec.table == "flood" or spec.goto == "flood"


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_after_random_updates_the_incremental_verdict_equals_a_fresh_verifiers(seed):
    """Updates of every kind, flood and catch-all flows (whose change re-walks classes
    through cached sub-walks of the spanning tree) among them, groups that tag frames
    and flows for one tag (atoms split under values already written), compared with a
    fresh verifier and with one that caches no walk."""
    rng = random.Random(seed)
    net = controller_network(fakeoftable.DIAMOND_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h4", 4, 3)),
                             apps=("qos", "te"))
    names = sorted(net.hosts)
    policy = Policy(reach=(("h1", "h4"), ("h2", "h4")), isolate=(frozenset({"h1"}), frozenset({"h2"})))
    v = verifier_of(net, policy)
    v.check_all()
    removed: list = []
    for step in range(60):
        dp = rng.choice(sorted(v.switches))
        sw = v.switches[dp]
        specs = [r.spec for t in sw.tables.values() for r in t.rules.values()]
        roll = rng.random()
        if roll < 0.2 and specs:
            spec = rng.choice(specs)
            applied(v, delete(dp, spec))
            removed.append((dp, spec))
        elif roll < 0.35 and any(broad(s) for s in specs):
            spec = rng.choice([s for s in specs if broad(s)])
            applied(v, delete(dp, spec))
            removed.append((dp, spec))
        elif roll < 0.45:
            ports = tuple(("output", p) for p in sorted(rng.sample([1, 2, 3], rng.randrange(1, 4))))
            applied(v, add(dp, flow("flood", rng.choice([10, 20]), rng.choice([{}, {"in_port": 1}]), ports)))
        elif roll < 0.6 and removed:
            applied(v, add(*removed.pop(rng.randrange(len(removed)))))
        elif roll < 0.75:
            host = net.host(rng.choice(names))
            port = rng.choice([1, 2, 3])
            applied(v, add(dp, flow("forward", rng.choice([5, 1000, 1001, 3000]),
                                 {"eth_dst": host.mac, "eth_type": IP}, [("output", port)])))
        elif roll < 0.85:
            applied(v, add(dp, flow("classify", 850, {"eth_type": IP, "ip_dscp": rng.choice([0, 10, 46]),
                                                    "ipv4_dst": f"10.0.0.{rng.randrange(0, 8)}/30"},
                                 [("set_field", "ip_dscp", 46)], goto="forward")))
        elif roll < 0.9:
            tag = 0x1000 | rng.randrange(1, 6)
            applied(v, add(dp, flow("ingress", 1600, {"vlan_vid": tag},
                                    rng.choice([[], [("pop_vlan",), ("output", rng.choice([1, 2, 3]))]]))))
        elif sw.groups and roll < 0.95:
            group = sw.groups[rng.choice(sorted(sw.groups))]
            tag = 0x1000 | rng.randrange(1, 6)
            bucket = Bucket(watch_port=rng.choice([1, 2]), actions=(
                ("push_vlan", 0x8100), ("set_field", "vlan_vid", tag), ("output", rng.choice([1, 2]))))
            applied(v, add(dp, GroupSpec(group.group_id, "ff", (bucket,))))
        elif sw.groups:
            group = sw.groups[rng.choice(sorted(sw.groups))]
            applied(v, delete(dp, group))
            removed.append((dp, group))
        # classes keep their ids across updates and are re-indexed where they differ: the
        # indexes must stay exactly what the classes say
        assert indexes(v) == rebuilt_indexes(v)
        ways_hold(v)
        if step % 10 == 9:
            other = fresh(v, policy)
            uncached = fresh(v, policy, cached=False)
            assert v.findings_set() == other.findings_set() == uncached.findings_set()
            assert canonical(v) == canonical(other) == canonical(uncached)
            assert walks(v, cached=True) == walks(v, cached=False)     # the same cubes too
            assert all(v.reaches(a, b) == other.reaches(a, b) for a in names for b in names if a != b)


# ---- agreement with the fake switches' walk ---------------------------------------------------

@pytest.mark.parametrize("shape", ["triangle", "diamond"])
def test_every_class_and_random_frames_go_where_the_fake_switches_send_them(shape):
    if shape == "triangle":
        net = controller_network(fakeoftable.TRIANGLE_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)))
    else:
        net = controller_network(fakeoftable.DIAMOND_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h4", 4, 3)))
    v = verifier_of(net, Policy.all_pairs(net.hosts))
    assert v.check_all().added == [], "the controller's own flows pass"
    checked = 0
    for cls in list(v.classes.values()):
        example = v.space.example(cls.cubes[0])
        select = any(e[0] == "g" and v.switches[e[1]].groups[e[2]].type == "select" for e in cls.events)
        mine = v.outcome(cls.ingress, example)
        assert agrees(mine, oracle(net, cls.ingress, example), select), (cls.ingress, example, mine)
        checked += 1
    assert checked > 20
    rng = random.Random(7)
    macs = [h.mac for h in net.hosts.values()] + ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01",
                                                  "02:fe:0a:32:00:01"]
    ips = [h.ip for h in net.hosts.values()] + ["10.50.0.1", "10.50.0.3", "192.0.2.1"]
    for _ in range(300):
        src = rng.choice(sorted(net.hosts))
        headers = {"eth_src": net.host(src).mac, "eth_dst": rng.choice(macs),
                   "eth_type": rng.choice([IP, IP, IP, 0x0806, 0x88CC, 0x86DD])}
        if headers["eth_type"] == IP:
            proto = rng.choice([6, 17, 1])
            headers.update(ipv4_src=net.host(src).ip, ipv4_dst=rng.choice(ips), ip_proto=proto,
                           ip_dscp=rng.choice([0, 46, 10]))
            if proto in (6, 17):
                name = "tcp" if proto == 6 else "udp"
                headers.update({f"{name}_src": rng.randrange(1, 65536),
                                f"{name}_dst": rng.choice([80, 5201])})
        mine = v.outcome(src, headers)
        truth = oracle(net, src, headers)
        assert agrees(mine, truth, select=headers.get("ipv4_dst", "").startswith("10.50.")), (src, headers)


def test_a_failed_link_is_followed_through_the_fast_failover_detours_like_the_fake_switches_do():
    net = controller_network(fakeoftable.DIAMOND_LINKS, (("h1", 1, 3), ("h4", 4, 3)), apps=())
    h1, h4 = net.host("h1"), net.host("h4")
    first_hop = net.trace("h1", "h4")[1]
    port = next(pa for a, pa, b, _ in net.links if a == 1 and b == first_hop)
    net.up[(1, port)] = False                   # the port is down; no controller reaction yet
    v = verifier_of(net, Policy(reach=(("h1", "h4"),)))
    frame = {"eth_src": h1.mac, "eth_dst": h4.mac, "eth_type": IP, "ipv4_src": h1.ip, "ipv4_dst": h4.ip,
             "ip_proto": 253, "ip_dscp": 0}
    mine = v.outcome("h1", frame)
    assert agrees(mine, oracle(net, "h1", frame), select=False)
    assert mine["delivered"] == ["h4"] and first_hop not in mine["switches"]


def test_a_value_a_group_bucket_sets_is_its_own_atom_so_a_flow_added_for_it_later_is_seen():
    """A detour bucket tags frames with one VLAN id (push_vlan, set_field vlan_vid); the next
    switch takes every tagged frame. A flow added later for that one tag splits the atom the
    tag was in: the classes that carry the tag must be found and walked again (a tag recorded
    as the atom before the split would look apart from the new flow's)."""
    net, v = hand_made([(1, 1, 2, 1)], ("h1", 1, 3), ("h2", 2, 3))
    tag = 0x1000 | 7
    detour = GroupSpec(0x02000001, "indirect", (Bucket(actions=(
        ("push_vlan", 0x8100), ("set_field", "vlan_vid", tag), ("output", 1))),))
    v.load(1, [flow("ingress", 100, {"eth_dst": H2}, [("group", detour.group_id)])], [detour])
    v.load(2, [flow("ingress", 10, {"vlan_vid": (0x1000, 0x1000)}, [("pop_vlan",), ("output", 3)])])
    v.check_all(Policy(reach=(("h1", "h2"),)))
    assert v.reaches("h1", "h2")
    report = v.apply(add(2, flow("ingress", 20, {"vlan_vid": tag}, [])))     # that tag is now dropped
    assert report.rewalked == 1 and [f.detail for f in by_check(report.added, "reach")] == [
        "h1 -> h2: dropped at s2 (a flow drops it)"]
    assert not v.reaches("h1", "h2")
    other = fresh(v, v.policy)
    assert v.findings_set() == other.findings_set() and canonical(v) == canonical(other)


def test_a_cached_walk_kept_past_a_flow_it_cannot_meet_is_keyed_on_the_field_that_told():
    """A flow added for one source on a far switch leaves the cached walks of other sources'
    frames through that switch in use (no frame of theirs can meet it). A walk that takes one
    of them in must then be keyed on the source too: the same walk for the flow's own source
    would be wrong."""
    links = [(1, 1, 2, 1), (2, 2, 3, 1), (3, 2, 4, 1)]
    net, v = hand_made(links, ("h0", 1, 3), ("h1", 1, 4), ("h4", 4, 3))
    h1, h4 = net.host("h1"), net.host("h4")
    for dp, port in ((1, 1), (2, 2), (3, 2), (4, 3)):
        v.load(dp, [flow("ingress", 10, {"eth_dst": h4.mac}, [("output", port)])])
    v.check_all(Policy(reach=(("h0", "h4"), ("h1", "h4"))))
    assert v.reaches("h0", "h4") and v.reaches("h1", "h4")
    v.apply(add(4, flow("ingress", 20, {"eth_src": h1.mac, "eth_dst": h4.mac}, [])))
    assert not v.reaches("h1", "h4")
    # s2 changes for both sources: both are walked again from s2, h0's frames first, through
    # the walk from s3 on made before the flow for h1 came (good for h0's frames only)
    report = v.apply(add(2, flow("ingress", 30, {"eth_dst": h4.mac}, [("output", 2)])))
    assert report.rewalked == 2
    assert v.reaches("h0", "h4") and not v.reaches("h1", "h4")
    other = fresh(v, v.policy)
    assert v.findings_set() == other.findings_set() and canonical(v) == canonical(other)
    ways_hold(v)


def test_a_cached_walk_through_a_changed_switch_stays_in_use_where_it_never_looked_the_flow_up():
    """A walk through s2 made before a flow there came stays in use when it never visited
    that flow's table, or visited it from another in_port than the flow's; a flow it can
    meet where it looked its table up makes it stale."""
    links = [(1, 1, 2, 1), (2, 2, 3, 1)]
    net, v = hand_made(links, ("h1", 1, 3), ("h3", 3, 3))
    h3 = net.host("h3")
    v.load(1, [flow("ingress", 10, {"eth_dst": h3.mac}, [("output", 1)])])
    v.load(2, [flow("ingress", 0, {}, [], goto="forward"),
               flow("forward", 10, {"eth_dst": h3.mac}, [("output", 2)])])
    v.load(3, [flow("ingress", 10, {"eth_dst": h3.mac}, [("output", 3)])])
    v.check_all(Policy(reach=(("h1", "h3"),)))
    cube = v._host_cube("h1")
    cube = cube[:0] + (v.space.fields[0].mask(*v.space.interval("eth_dst", h3.mac)[1:]),) + cube[1:]
    cache = v.walker.cache

    def cached() -> bool:
        return cache.tree_get((2, 1, ()), cube, ((1, 3),)) is not None

    assert cached()
    v.apply(add(2, flow("flood", 10, {}, [("output", 1), ("output", 2)])))      # never visited
    assert cached()
    v.apply(add(2, flow("forward", 20, {"in_port": 2, "eth_dst": h3.mac}, [])))  # another in_port
    assert cached()
    v.apply(add(2, flow("forward", 20, {"eth_dst": h3.mac}, [])))                # met: dropped now
    assert not cached()
    assert not v.reaches("h1", "h3")
    other = fresh(v, v.policy)
    assert v.findings_set() == other.findings_set() and canonical(v) == canonical(other)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_class_walked_again_from_the_changed_table_gets_the_way_of_a_walk_from_the_first(seed):
    """Classes walked again from the changed table (after their visits before it, reached by
    gotos) take the same ways, and give the same findings, as classes walked again from where
    they entered the switch, on random updates of every table of the apps' pipeline."""
    rng = random.Random(seed)
    net = controller_network(fakeoftable.DIAMOND_LINKS, (("h1", 1, 3), ("h2", 2, 3), ("h4", 4, 3)))
    policy = Policy.all_pairs(net.hosts)
    v, plain = verifier_of(net, policy), verifier_of(net, policy)
    plain.walker._by_gotos = lambda *args: None          # every class from where it entered
    mids = []
    by_gotos = v.walker._by_gotos

    def counted(*args):
        got = by_gotos(*args)
        mids.append(got is not None)
        return got

    v.walker._by_gotos = counted
    v.check_all()
    plain.check_all()
    removed: list = []
    for _ in range(50):
        dp = rng.choice(sorted(v.switches))
        specs = sorted((r.spec for t in v.switches[dp].tables.values() for r in t.rules.values()
                        if r.spec.table != "ingress"), key=repr)
        roll = rng.random()
        if roll < 0.4 and specs:
            spec = rng.choice(specs)
            update = delete(dp, spec)
            removed.append((dp, spec))
        elif roll < 0.7 and removed:
            update = add(*removed.pop(rng.randrange(len(removed))))
        elif roll < 0.85:
            update = add(dp, flow("classify", rng.choice([850, 1500]),
                                  {"eth_type": IP, "ip_dscp": rng.choice([0, 10, 46])},
                                  [("set_field", "ip_dscp", 46)], goto="forward"))
        else:
            host = net.host(rng.choice(sorted(net.hosts)))
            update = add(dp, flow("forward", rng.choice([5, 3000]), {"eth_dst": host.mac},
                                  [("output", rng.choice([1, 2, 3]))]))
        mine, theirs = v.apply(update), plain.apply(update)
        assert (mine.added, mine.removed) == (theirs.added, theirs.removed)
        assert canonical(v) == canonical(plain)
        assert indexes(v) == rebuilt_indexes(v)
    ways_hold(v)
    assert sum(mids) > 10
