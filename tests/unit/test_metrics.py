"""Tests for controller.metrics: what a Prometheus scrape of the core shows."""

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from controller.metrics import registry_for
from controller.telemetry import PortSample

from tests.lib.fakeoftable import ipv4_frame, triangle

CAPACITIES = {(1, 2): 1000.0, (1, 3): 1000.0, (2, 3): 400.0}


def scrape(core) -> dict[tuple[str, tuple], float]:
    text = generate_latest(registry_for(core)).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def net():
    network = triangle(CAPACITIES)
    network.announce("h1", "h2")
    network.send("h1", ipv4_frame(network.host("h1"), network.host("h2")))
    return network


def test_scrape_shows_switches_links_hosts_and_paths(net):
    samples = scrape(net.core)
    assert samples[("foresight_switches", ())] == 3
    assert samples[("foresight_links", ())] == 6
    assert samples[("foresight_hosts", ())] == 2
    assert samples[("foresight_paths", ())] == 1
    assert samples[("foresight_predictive_mode", ())] == 0


def test_every_directed_link_has_a_utilisation_series(net):
    samples = scrape(net.core)
    links = {dict(labels)["link"] for name, labels in samples if name == "foresight_link_utilisation"}
    assert links == {"1:1-2:1", "2:1-1:1", "1:2-3:1", "3:1-1:2", "2:2-3:2", "3:2-2:2"}


def test_link_utilisation_follows_port_counters(net):
    net.core.port_stats(2, {2: PortSample(time=10.0, tx_bytes=0, rx_bytes=0)})
    net.core.port_stats(2, {2: PortSample(time=12.0, tx_bytes=50_000_000, rx_bytes=0)})  # 200 Mbit/s
    samples = scrape(net.core)
    assert samples[("foresight_link_rate_mbps", (("link", "2:2-3:2"),))] == pytest.approx(200.0)
    assert samples[("foresight_link_utilisation", (("link", "2:2-3:2"),))] == pytest.approx(0.5)
    assert samples[("foresight_link_utilisation", (("link", "3:2-2:2"),))] == 0.0


def test_flow_mod_counters_match_what_was_sent(net):
    samples = scrape(net.core)
    mods = [m.command for _, m in net.sent if isinstance(m, parser.OFPFlowMod)]
    adds, deletes = mods.count(ofp.OFPFC_ADD), mods.count(ofp.OFPFC_DELETE_STRICT)
    assert adds > 0
    assert samples[("foresight_flow_mods_total", (("op", "add"),))] == adds
    assert samples[("foresight_flow_mods_total", (("op", "delete"),))] == deletes
    assert samples[("foresight_reconciliations_total", ())] == 3


def test_group_and_meter_mod_counters_are_exported(net):
    before = dict(net.core.counters)        # fast-failover groups are already in
    net.core.counters.update(group_adds=2, group_modifies=1, meter_deletes=3)
    samples = scrape(net.core)
    assert samples[("foresight_group_mods_total", (("op", "add"),))] == before.get("group_adds", 0) + 2
    assert samples[("foresight_group_mods_total", (("op", "modify"),))] == before.get("group_modifies", 0) + 1
    assert samples[("foresight_group_mods_total", (("op", "delete"),))] == before.get("group_deletes", 0)
    assert samples[("foresight_meter_mods_total", (("op", "delete"),))] == 3


def test_bad_packets_are_counted_as_errors(net):
    net.core.packet_in(1, 3, b"\x00\x01", net.now)
    samples = scrape(net.core)
    assert samples[("foresight_errors_total", (("kind", "bad_packets"),))] == 1
    assert samples[("foresight_packet_in_total", ())] == net.core.counters["packet_in"]
