"""Prometheus metrics, read from the core at scrape time (no second copy of state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from controller.core import ControllerCore


class CoreCollector:
    def __init__(self, core: ControllerCore):
        self.core = core

    def collect(self):
        core = self.core
        with core.lock:
            switches = len(core.switches)
            links = core.topology.links()
            hosts = len(core.hosts)
            paths = len(core.forwarding.paths)
            counters = dict(core.counters)
            modes = core.app_modes()
            predictive = any(m == "predictive" for m in modes.values())
            providers = list(core.providers.values())
        yield GaugeMetricFamily("foresight_switches", "Connected switches", value=switches)
        yield GaugeMetricFamily("foresight_links", "Discovered directed links", value=len(links))
        yield GaugeMetricFamily("foresight_hosts", "Learned hosts", value=hosts)
        yield GaugeMetricFamily("foresight_paths", "Installed host-pair paths", value=paths)
        yield GaugeMetricFamily("foresight_predictive_mode",
                                "1 when forecasts drive some app's decisions, 0 in reactive mode",
                                value=1 if predictive else 0)
        per_app = GaugeMetricFamily("foresight_app_predictive", "Per app deciding on demand: 1 on forecasts, "
                                    "0 on measurements", labels=["app"])
        for name, mode in modes.items():
            per_app.add_metric([name], 1 if mode == "predictive" else 0)
        yield per_app
        util = GaugeMetricFamily("foresight_link_utilisation",
                                 "Measured rate / capacity per directed link", labels=["link"])
        rate = GaugeMetricFamily("foresight_link_rate_mbps", "Measured rate per directed link",
                                 labels=["link"])
        for link in links:
            util.add_metric([link.name], link.utilisation)
            rate.add_metric([link.name], link.rate_mbps)
        yield util
        yield rate
        mods = CounterMetricFamily("foresight_flow_mods", "Flow-mods sent", labels=["op"])
        mods.add_metric(["add"], counters.get("flow_adds", 0))
        mods.add_metric(["delete"], counters.get("flow_deletes", 0))
        yield mods
        for kind in ("group", "meter"):
            family = CounterMetricFamily(f"foresight_{kind}_mods", f"{kind.capitalize()}-mods sent",
                                         labels=["op"])
            for op, counter in (("add", "adds"), ("modify", "modifies"), ("delete", "deletes")):
                family.add_metric([op], counters.get(f"{kind}_{counter}", 0))
            yield family
        port_mods = CounterMetricFamily("foresight_port_mods", "Port mods sent to hold ports "
                                        "administratively down for apps, or bring them back up",
                                        labels=["op"])
        for op in ("down", "up"):
            port_mods.add_metric([op], counters.get(f"port_mods_{op}", 0))
        yield port_mods
        yield CounterMetricFamily("foresight_packet_in", "Packet-ins received",
                                  value=counters.get("packet_in", 0))
        errors = CounterMetricFamily("foresight_errors", "Errors by kind", labels=["kind"])
        for key in ("bad_packets", "openflow_errors", "openflow_refusals", "send_failures", "no_path",
                    "provider_errors", "desired_rejects", "dump_failures", "break_wait_timeouts"):
            errors.add_metric([key], counters.get(key, 0))
        yield errors
        yield CounterMetricFamily("foresight_reconciliations", "Switch flow reconciliations",
                                  value=counters.get("reconciliations", 0))
        bundles = CounterMetricFamily("foresight_bundles", "OpenFlow bundles (controller.sync.bundles) by "
                                      "outcome", labels=["outcome"])
        for outcome in ("opened", "committed", "discarded", "refused"):
            bundles.add_metric([outcome], counters.get(f"bundles_{outcome}", 0))
        yield bundles
        for app in providers:
            yield from app.metric_families()


def registry_for(core: ControllerCore) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(CoreCollector(core))
    return registry


def serve(core: ControllerCore, host: str, port: int):
    """Start the /metrics HTTP endpoint; returns (server, thread)."""
    return start_http_server(port, addr=host, registry=registry_for(core))
