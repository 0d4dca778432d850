"""foresight lab run stitching: virtual networks of different sites stitched, over an
encrypted underlay, through an underlay failure, and torn down.

The multi-site lab (``labs/sites_lab.py`` on ``topologies/sites.py``): sites a, b and
c, each its own Open vSwitch in its own namespace, joined by two underlay planes
shaped to 50 Mbit/s per uplink; route managers advertise every second. The policy
lets tenant acme stitch VN 100 (site a) with VN 200 (site b) only encrypted, VN 101
with VN 200 unencrypted up to 10 Mbit/s, and refuses anything with VN 300 (tenant
globex, site c).

1. Before: a-h1 (VN 100) cannot reach b-h1 (VN 200).
2. QueryStitchAvailability: the underlay paths on offer, with what the route managers
   measured.
3. A refused stitch (VN 100 with VN 300): PERMISSION_DENIED, naming the rule; no flow
   changes.
4. The encrypted segment stitch: time from the request to ESTABLISHED and to the
   first answered ping; UDP at 10 Mbit/s for 5 s (iperf3) and what arrived; a capture
   on the underlay while it runs: WireGuard packets against plaintext (VXLAN or ICMP).
5. An underlay failure: a 200 Hz UDP probe both ways while site a's plane-1 uplink is
   cut; the stitch moves to plane 2; the longest gap in each direction.
6. A 5 Mbit/s bandwidth stitch (VN 101 with VN 200) offered 20 Mbit/s.
7. Teardown: both stitches deleted; a-h1 cannot reach b-h1 again, and no flow, meter,
   WireGuard link or VXLAN port of theirs is left.

The report goes to ``reports/stitching.txt`` and ``.json``.
"""

from __future__ import annotations

import argparse
import logging
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc

from apps.stitching import dataplane as stitching
from controller import cookies
from labs.lab import ROOT, write_report
from labs.sites_lab import SitesLab
from labs.udp_probe import both_ways, loss_windows
from topologies.sites import default_spec

POLICY = [
    {"name": "acme-100-200-encrypted", "tenant": "acme", "between": [100, 200],
     "kinds": ["segment", "direct"], "encrypt": True},
    {"name": "acme-101-200-capped", "tenant": "acme", "between": [101, 200], "kinds": ["bandwidth"],
     "max_mbps": 10},
    {"name": "no-globex", "action": "deny", "tenant": "*", "between": ["*", 300]},
]


def _first_reply(lab: SitesLab, src: str, dst: str, since: float, timeout_s: float = 30.0) -> float | None:
    while time.monotonic() - since < timeout_s:
        if lab.ping(src, dst, timeout_s=0.5):
            return time.monotonic() - since
    return None


def _probe_through(lab: SitesLab, a: str, b: str, action, rate_hz: float, duration_s: float, at_s: float):
    """The UDP probe both ways across the stitch while ``action()`` runs; per direction
    the datagrams lost, the longest gap and how many were sent."""
    def popen(name, argv):
        return lab.host_popen(name, argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    event_at, reports = both_ways(popen, lambda name: lab.host(name).address, a, b, action, rate_hz,
                                  duration_s, at_s, 5998)
    out = {}
    for direction, report in reports.items():
        gaps = loss_windows(report, report["peer_sent"])
        out[direction] = {"lost": sum(lost for _, _, lost in gaps), "sent": report["peer_sent"],
                          "window_ms": round(max((ms for _, ms, _ in gaps), default=0.0), 1)}
    return event_at, out


def _leftovers(lab: SitesLab) -> list[str]:
    """What any stitch left on the sites: WireGuard links, VXLAN ports, flows or meters
    of the stitching app other than the sites' own L2 flows (by cookie and meter id)."""
    left = []
    for name, site in lab.sites.items():
        links = site.exec("ip", "-o", "link", "show", check=False).stdout
        left += [f"{name}: {word}" for word in ("wgs", "vxe") if word in links]
        for cookie in re.findall(r"cookie=(0x[0-9a-f]+)", site.ofctl("dump-flows", options=("--no-stats",))):
            if (cookies.owner_of(int(cookie, 16)) == stitching.OWNER
                    and int(cookie, 16) != stitching.SITE_COOKIE):
                left.append(f"{name}: flow with cookie {cookie}")
        for meter in re.findall(r"^meter=(\d+)", site.ofctl("dump-meters"), flags=re.M):
            if cookies.id_owner(int(meter)) == stitching.OWNER:
                left.append(f"{name}: meter {meter}")
    return left


def run(out_dir: Path) -> dict:
    report: dict = {"policy": POLICY}
    started = time.monotonic()
    lab = SitesLab(default_spec(plane_mbps=50.0), policy=POLICY).start()
    try:
        client = lab.stitching()
        time.sleep(2.5)                 # a round of probes, so the sites report round trips
        report["sites"] = {s.advertisement.site: {
            "hosts": [f"{h.name} VN {h.vnid} ({h.tenant})" for h in s.advertisement.hosts],
            "planes": [{"plane": p.plane, "address": p.address, "up": p.up,
                        "available_mbps": round(p.available_mbps, 1),
                        "rtt_ms": {k: round(v, 3) for k, v in sorted(p.rtt_ms.items())}}
                       for p in s.advertisement.planes]} for s in client.sites()}
        report["before"] = {"a-h1 -> b-h1": lab.ping("a-h1", "b-h1")}
        offer = client.query("acme", 100, 200, min_mbps=10)
        report["availability"] = {"sites": [offer.src_site, offer.dst_site], "paths": [
            {"plane": p.plane, "available_mbps": round(p.available_mbps, 1),
             "rtt_ms": round(p.rtt_ms, 3) if p.rtt_known else None, "cost": p.cost} for p in offer.paths]}

        try:
            client.create("acme", "segment", 100, 300)
            report["refused"] = {"code": "OK (unexpected)"}
        except grpc.RpcError as err:
            report["refused"] = {"code": err.code().name,
                                 "rule": dict(err.trailing_metadata() or ()).get("foresight-rule"),
                                 "details": err.details()}

        asked = time.monotonic()
        stitch = client.create("acme", "segment", 100, 200, id="acme-web-db")
        first_reply_s = _first_reply(lab, "a-h1", "b-h1", asked)
        while client.get(stitch.id).state != 2 and time.monotonic() - asked < 30:
            time.sleep(0.05)
        established = client.get(stitch.id)
        report["encrypted"] = {"id": stitch.id, "vni": stitch.vni, "rule": stitch.rule,
                               "encrypted": stitch.encrypted, "plane": established.plane,
                               "established_s": round(established.changed_at - established.created_at, 3),
                               "first_reply_s": None if first_reply_s is None else round(first_reply_s, 3)}
        lines_holder: list[list[str]] = []
        catcher = threading.Thread(target=lambda: lines_holder.append(
            [ln for ln in lab.capture("a1", "ip", 4.0) if " IP " in ln]))
        catcher.start()
        got = lab.iperf_udp("a-h1", "b-h1", 10.0, 5.0)
        catcher.join(20)
        lines = lines_holder[0] if lines_holder else []
        wg_port = str(51820 + stitch.vni - 10000)
        wireguard = [ln for ln in lines if f".{wg_port}:" in ln or f".{wg_port} >" in ln]
        plain = [ln for ln in lines if ".4789:" in ln or ("ICMP" in ln and "10.60." in ln)]
        rates = client.get(stitch.id).rates
        report["encrypted"].update({
            "offered_mbps": 10.0, "received_mbps": round(got, 2),
            "meter_offered_mbps": {e.site: round(e.offered_mbps, 2) for e in rates},
            "underlay_packets": len(lines), "wireguard_packets": len(wireguard),
            "plaintext_packets": len(plain)})

        def cut():
            lab.set_plane("a", 1, up=False)
        event_at, windows = _probe_through(lab, "a-h1", "b-h1", cut, 200.0, 10.0, 3.0)
        moved = client.get(stitch.id)
        report["failover"] = {"cut": "site a's plane-1 uplink", "plane_after": moved.plane,
                              "windows": windows, "history": list(moved.history)[-3:]}
        lab.set_plane("a", 1, up=True)

        bw = client.create("acme", "bandwidth", 101, 200, bandwidth_mbps=5, enforce_timeout_s=10)
        _first_reply(lab, "a-h3", "b-h1", time.monotonic())
        report["bandwidth"] = {"id": bw.id, "reserved_mbps": 5.0, "offered_mbps": 20.0,
                               "received_mbps": round(lab.iperf_udp("a-h3", "b-h1", 20.0, 5.0), 2)}

        client.delete(bw.id)
        client.delete(stitch.id)
        time.sleep(3.0)
        report["teardown"] = {"a-h1 -> b-h1": lab.ping("a-h1", "b-h1"),
                              "a-h3 -> b-h1": lab.ping("a-h3", "b-h1"),
                              "left": _leftovers(lab)}
    finally:
        lab.stop()
    report["run_s"] = round(time.monotonic() - started, 1)
    return report


def render(r: dict) -> str:
    lines = ["stitching lab: three sites (own Open vSwitch per namespace), two underlay planes of 50 Mbit/s, "
             "route managers every 1 s", ""]
    for site, info in sorted(r["sites"].items()):
        planes = "; ".join(f"plane {p['plane']} {p['address']} {'up' if p['up'] else 'DOWN'} "
                           f"{p['available_mbps']} Mbit/s free, rtt {p['rtt_ms'] or 'n/a'}"
                           for p in info["planes"])
        lines.append(f"site {site}: {', '.join(info['hosts'])}")
        lines.append(f"         {planes}")
    lines.append("")
    lines.append(f"before any stitch    a-h1 -> b-h1 reachable: {r['before']['a-h1 -> b-h1']}")
    av = r["availability"]
    lines.append(f"availability         VN 100 at {av['sites'][0]} <-> VN 200 at {av['sites'][1]}: "
                 + "; ".join(f"plane {p['plane']} {p['available_mbps']} Mbit/s rtt {p['rtt_ms']} ms "
                             f"cost {p['cost']:g}" for p in av["paths"]))
    ref = r["refused"]
    lines.append(f"refused              VN 100 <-> VN 300: {ref['code']} by rule {ref.get('rule')}")
    e = r["encrypted"]
    lines += [
        f"encrypted stitch     {e['id']} VNI {e['vni']} (rule {e['rule']}), plane {e['plane']}: ESTABLISHED "
        f"{e['established_s']} s after the request, first ping answered after {e['first_reply_s']} s",
        f"  traffic            {e['received_mbps']} Mbit/s received "
        f"of {e['offered_mbps']:g} offered (UDP, 5 s); "
        f"meters saw {e['meter_offered_mbps']}",
        f"  underlay capture   {e['underlay_packets']} IP packets on site a's plane-1 uplink: "
        f"{e['wireguard_packets']} WireGuard, {e['plaintext_packets']} plaintext (VXLAN or ICMP)"]
    f = r["failover"]
    lines.append(f"underlay failure     {f['cut']} cut under a 200 Hz probe: "
                 f"stitch now on plane {f['plane_after']}")
    for direction, w in f["windows"].items():
        lines.append(f"  {direction:<17} longest gap {w['window_ms']} ms, {w['lost']} of {w['sent']} lost")
    b = r["bandwidth"]
    lines.append(f"bandwidth stitch     {b['reserved_mbps']:g} Mbit/s reserved: "
                 f"{b['received_mbps']} Mbit/s received of {b['offered_mbps']:g} offered")
    t = r["teardown"]
    lines.append(f"teardown             a-h1 -> b-h1 reachable: {t['a-h1 -> b-h1']}, "
                 f"a-h3 -> b-h1: {t['a-h3 -> b-h1']}; left behind: {', '.join(t['left']) or 'nothing'}")
    lines += ["", f"({r['run_s']} s)", "",
              "Established: the stitch's flows confirmed by both site switches "
              "(for an encrypted stitch, once both",
              "route managers have built its WireGuard link and VXLAN port). "
              "Meters: every stitch end's traffic",
              "into the tunnel passes a meter (a bandwidth stitch's drops above its rate). "
              "Longest gap: the longest",
              "run of missing probe datagrams, as time between the datagrams at its edges."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="foresight lab run stitching", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "reports"))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    report = run(Path(args.out))
    text = render(report)
    print(text)
    write_report(Path(args.out), "stitching", text, report)
    ok = (not report["before"]["a-h1 -> b-h1"] and report["encrypted"]["first_reply_s"] is not None
          and report["encrypted"]["plaintext_packets"] == 0 and not report["teardown"]["left"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
