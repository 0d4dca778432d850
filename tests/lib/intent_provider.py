"""A provider holding per-switch intent, set by the test (``intent[dp_id] = Desired``)."""

from __future__ import annotations

from controller.appbase import App
from controller.desired import Desired
from controller.flows import FlowSpec
from controller.groups import GroupSpec
from controller.meters import MeterSpec


class IntentProvider(App):
    """A provider holding per-switch intent."""

    name = "slices"

    def __init__(self):
        super().__init__(None)
        self.intent: dict[int, Desired] = {}

    def desired(self, dp_id, now):
        return self.intent.get(dp_id, Desired())


def want(net, dp_id: int, *entries) -> None:
    """``net.stub`` (an IntentProvider on ``net``) wants ``entries`` on ``dp_id`` and
    resyncs, as an app does."""
    net.stub.intent[dp_id] = Desired(flows=tuple(e for e in entries if isinstance(e, FlowSpec)),
                                     groups=tuple(e for e in entries if isinstance(e, GroupSpec)),
                                     meters=tuple(e for e in entries if isinstance(e, MeterSpec)))
    with net.core.lock:
        net.deliver(net.core.resync(net.now))
