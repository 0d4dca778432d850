"""Network slices: a client's service behind a VIP range, served by a scaled set of pool members.

The domain layer is pure: slice definitions and their validation (``model``), pools
of member hosts (``pool``), VIP ranges and per-member addresses (``vips``), the
forecast-driven scaling decision (``scaling``) and SQLite persistence (``store``);
nothing there talks to switches or reads the clock. ``dataplane`` turns slices into
flows, groups and meters, ``manager`` is the app the controller runs (with
``autoscale`` stepping it on forecasts), ``api`` its gRPC service, ``app`` the factory
(``apps.slices.app:provider``).

Importing the package registers the app: owner ``slices``, its tables ``lb`` (entered
from the shared ``classify``) and ``member`` (entered by resubmit from its select
groups' buckets, see ``controller.pipeline``), its band in ``classify``, and its
config section ``slices``.
"""

from apps.slices.config import SlicesConfig
from controller.appbase import AppSpec, register
from controller.pipeline import Table

SPEC = register(AppSpec(
    name="slices", code=0x04, ids=True,
    tables=(
        Table("lb", 4, frozenset({"eth_type", "ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst",
                                  "udp_src", "udp_dst"}),
              miss="drop", owner="slices",
              description="VIP load balancing: connection pins, then select groups"),
        Table("member", 5, frozenset({"eth_type", "ip_proto", "ipv4_dst", "reg6"}),
              miss="drop", resubmit_target=True, owner="slices",
              description="the member a select bucket picked (reg6): pin the connection, rewrite, output"),
    ),
    entries=(("classify", "lb"),),
    # VIP classification, replies and transit: 1010..1020 plus the class offset (0..200).
    bands=(("classify", 1010, 1220),),
    section="slices", schema=SlicesConfig,
    summary="slices: VIP ranges served by pool members scaled on forecasts, metered per slice"))
