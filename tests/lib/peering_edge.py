"""A peering app on the core and a fake edge switch, with a fake speaker, for unit tests.

One switch (dp 1): ``src`` on port 1, our speaker ``bgp`` on 2, ``transit`` on 3,
``west`` on 4. Two destination networks: as64600 (transit with a path of three, west
with two) and as64601 (transit only). ``make_net`` builds the started network with
every host known; ``make_app`` puts the app on it, asks for the sessions ``start``
would, connects to the fake speaker and hands it its events.
"""

from __future__ import annotations

from types import SimpleNamespace

from apps.peering.config import PeeringConfig
from apps.peering.manager import PeeringManager
from controller.config import ClockConfig
from tests.lib.fakebgp import FakeSpeaker
from tests.lib.fakeoftable import FakeHost, FakeNetwork

ROUTER = "02:fe:00:00:00:01"
HOSTS = [
    FakeHost("src", 1, 1, "00:00:00:00:00:01", "10.0.0.1"),
    FakeHost("bgp", 1, 2, "00:00:00:00:01:01", "10.100.0.1"),
    FakeHost("transit", 1, 3, "00:00:00:00:01:02", "10.100.0.2"),
    FakeHost("west", 1, 4, "00:00:00:00:01:03", "10.100.0.3"),
]
# Two networks: as64600 (transit 3 hops, west 2) and as64601 (transit only).
TRANSIT_ROUTES = [
    ("100.64.0.0/24", (64500, 64999, 64600)),
    ("100.64.1.0/24", (64500, 64999, 64600)),
    ("100.64.8.0/24", (64500, 64999, 64601)),
]
WEST_ROUTES = [("100.64.0.0/24", (64501, 64600)), ("100.64.1.0/24", (64501, 64600))]


def settings_for(scheme: str, **extra) -> PeeringConfig:
    return PeeringConfig(
        **{
            "scheme": scheme,
            "edge_switch": "1",
            "slices": False,
            "min_dwell_s": 0.0,
            "step_s": 300.0,
            "horizons_s": (300.0, 900.0),
            "billing_window_s": 86400.0,
            "neighbours": [
                {
                    "name": "transit",
                    "asn": 64500,
                    "address": "10.100.0.2",
                    "kind": "transit",
                    "capacity_mbps": 10.0,
                    "cost_per_mbps": 1.0,
                    "always": True,
                    "lead_s": 0.0,
                },
                {
                    "name": "west",
                    "asn": 64501,
                    "address": "10.100.0.3",
                    "capacity_mbps": 10.0,
                    "cost_per_mbps": 0.2,
                    "hour_cost": 0.001,
                    "lead_s": 300.0,
                    "max_prefixes": 5,
                    "registered_origins": [64600],
                },
            ],
            **extra,
        }
    )


class Predictor:
    """Forecasts every group at ``mbps`` (a dict group -> Mbit/s) at every horizon and quantile."""

    def __init__(self, mbps: dict[str, float]):
        self.mbps = mbps
        self.ingested: list = []

    def ingest(self, samples, labels=None):
        self.ingested += list(samples)

    def forecast(self, series_ids, horizons_s, quantiles=()):
        rows = [
            SimpleNamespace(
                series_id=sid,
                horizon_s=h,
                degraded=False,
                quantiles=[
                    SimpleNamespace(quantile=q, value=self.mbps.get(sid.split(":", 1)[1], 0.0))
                    for q in quantiles
                ],
            )
            for sid in series_ids
            for h in horizons_s
        ]
        return SimpleNamespace(forecasts=rows)


def make_net() -> FakeNetwork:
    net = FakeNetwork([], HOSTS).start()
    net.announce("transit", "west", "bgp", "src")
    net.clear_inboxes()
    return net


def manager_on(net, settings: PeeringConfig, speaker, predictor=None, store=None) -> PeeringManager:
    """A peering app on ``net``'s core, on its fake clock (no threads started)."""
    app = PeeringManager(
        net.core.view,
        lambda: net.deliver(net.core.resync(net.now)),
        settings,
        speaker,
        predictor,
        store,
        clock=ClockConfig(),
        wall=lambda: net.now,
    )
    net.core.add_provider(app)
    return app


def make_app(
    net, scheme: str, predictor=None, store=None, speaker=None, **extra
) -> tuple[PeeringManager, FakeSpeaker]:
    speaker = speaker or FakeSpeaker(
        {"10.100.0.2": (64500, TRANSIT_ROUTES), "10.100.0.3": (64501, WEST_ROUTES)}
    )
    app = manager_on(net, settings_for(scheme, **extra), speaker, predictor, store)
    with app.lock:
        for name, n in app.neighbours.items():  # what start() asks for, without its threads
            if n.always or scheme == "plain_bgp":
                app._request(name, 0.0, "always up")
    app._connect()
    speaker.pump(app)
    return app, speaker
