"""The os-ken application: a thin shell around ``ControllerCore``.

It unpacks OpenFlow events, calls the core with ``now`` and sends the messages the
core returns, through ``_send`` — the one place that talks to switches. It also
owns the background work: the tick loop (LLDP, link expiry, stats polls), the
northbound gRPC server and the metrics endpoint, and it registers the providers
named in ``controller.providers`` (apps: each factory gets the core's read-only view
and ``resync``; ``controller.appbase`` declares what an app is).
Barrier replies to the core's ``SyncBarrier``s are matched by xid and reported to
the core (``barrier_replied``), which is how a change is known to be in place; those
to a ``BundleCheck`` (``controller.bundles``) decide whether a bundle is committed
(``bundle_checked``).
``_send`` also remembers the xid of every flow-, group- and meter-mod until that
reply (``controller.refusals.InFlight``), so an OpenFlow error is matched to the mod
it refused and reported to the core (``refused``) before the reply confirms anything.

The runner (``controller.cli``) hands the validated config over through
``configure()`` before os-ken instantiates this class.
"""

from __future__ import annotations

import logging
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, DEAD_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.lib import hub
from os_ken.ofproto import ofproto_v1_3 as ofp

from controller import api, desired, metrics, refusals
from controller.config import Config
from controller.core import ControllerCore
from controller.state import StateStore
from controller.telemetry import PortSample
from controller.topology import Port

LOG = logging.getLogger(__name__)

TICK_S = 0.2

_CONFIG: Config | None = None


def configure(config: Config) -> None:
    global _CONFIG
    _CONFIG = config


def port_from_ofp(port) -> Port:
    up = not (port.state & ofp.OFPPS_LINK_DOWN) and not (port.config & ofp.OFPPC_PORT_DOWN)
    name = port.name.decode(errors="replace") if isinstance(port.name, bytes) else str(port.name)
    return Port(port_no=port.port_no, name=name, hw_addr=port.hw_addr, up=up,
                admin_down=bool(port.config & ofp.OFPPC_PORT_DOWN), speed_mbps=port.curr_speed / 1000.0)


class ForesightApp(app_manager.OSKenApp):
    OFP_VERSIONS = [ofp.OFP_VERSION]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.config = _CONFIG or Config()
        path = self.config.controller.state.path
        self.store = StateStore(path) if path else None
        self.core = ControllerCore(self.config, store=self.store)
        self.core.restore_state(time.time())
        self.datapaths: dict[int, object] = {}
        # The mods and SyncBarriers sent and not yet answered, by switch and xid. Read
        # and written under the core's lock, like everything _send does.
        self.in_flight = refusals.InFlight()
        self._stop = threading.Event()
        self.grpc_server = None
        self.grpc_port = 0
        self.servicer = None
        self.metrics_server = None
        for path in self.config.controller.providers:
            self.core.add_provider(desired.load_factory(path)(self.core.view, self.resync))

    # ---- lifecycle -------------------------------------------------------------------

    def start(self):
        thread = super().start()
        ctl = self.config.controller
        for _, app in sorted(self.core.providers.items()):
            app.start()
        services = [service for app in self.core.providers.values() for service in app.grpc_services()]
        self.grpc_server, self.grpc_port, self.servicer = api.create_server(
            self.core, f"{ctl.grpc.listen_host}:{ctl.grpc.port}", ctl.grpc.max_workers, services)
        if ctl.grpc.unix_socket:
            if not self.grpc_server.add_insecure_port(f"unix:{ctl.grpc.unix_socket}"):
                raise OSError(f"cannot bind the gRPC server to unix:{ctl.grpc.unix_socket}")
            LOG.info("northbound gRPC also on unix:%s", ctl.grpc.unix_socket)
        self.grpc_server.start()
        LOG.info("northbound gRPC listening on %s:%d", ctl.grpc.listen_host, self.grpc_port)
        if ctl.metrics.enabled:
            self.metrics_server, _ = metrics.serve(self.core, ctl.metrics.listen_host, ctl.metrics.port)
            LOG.info("metrics on http://%s:%d/metrics", ctl.metrics.listen_host,
                     self.metrics_server.server_port)
        self.threads.append(hub.spawn(self._tick_loop))
        LOG.info("no prediction service connected: reactive mode (decisions use measurements only)")
        return thread

    def stop(self):
        self._stop.set()
        if self.servicer is not None:
            self.servicer.stopping = True
        self.core.bus.close()
        for app in self.core.providers.values():
            try:
                app.stopping()          # e.g. end its own watch streams
            except Exception:  # noqa: BLE001 - one app failing must not stop the shutdown
                LOG.exception("app %s failed to prepare for stopping", app.name)
        if self.grpc_server is not None:
            self.grpc_server.stop(grace=0.5)
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        for app in self.core.providers.values():
            try:
                app.close()
            except Exception:  # noqa: BLE001 - one app failing to close must not stop the others
                LOG.exception("app %s failed to close", app.name)
        if self.store is not None:
            try:
                self.core.save_state()
            finally:
                self.store.close()
        super().stop()

    def _tick_loop(self):
        while not self._stop.wait(TICK_S):
            try:
                self._do(self.core.tick, time.time())
            except Exception:  # noqa: BLE001 - the loop must survive any bug in one tick
                self.core.counters["tick_errors"] += 1
                LOG.exception("tick failed")

    def resync(self) -> None:
        """For providers: their intent changed, bring the switches up to date."""
        self._do(self.core.resync, time.time())

    # ---- the one send path -----------------------------------------------------------------

    def _do(self, method, *args) -> None:
        # Compute and enqueue under the core's lock, so two threads' diffs can
        # never reach a switch in the opposite order to the one they were made in.
        with self.core.lock:
            self._send(method(*args))

    def _send(self, out) -> None:
        for dp_id, msg in out:
            datapath = self.datapaths.get(dp_id)
            if datapath is None:
                continue
            msg.datapath = datapath
            try:
                if not datapath.send_msg(msg):      # send_msg gives the message its xid
                    self.core.counters["send_failures"] += 1
                else:
                    self.in_flight.sent(dp_id, msg)
            except Exception:  # noqa: BLE001 - a bad message must not stop the others
                self.core.counters["send_failures"] += 1
                LOG.exception("dp %016x: failed to send %s", dp_id, type(msg).__name__)

    # ---- OpenFlow events ---------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev):
        datapath = ev.datapath
        dp_id = datapath.id
        if dp_id is None:
            return
        if ev.state == MAIN_DISPATCHER:
            self._forget_barriers(dp_id)
            self.datapaths[dp_id] = datapath
            ports = [port_from_ofp(p) for p in datapath.ports.values() if p.port_no <= ofp.OFPP_MAX]
            self._do(self.core.switch_connected, dp_id, ports, time.time())
        elif ev.state == DEAD_DISPATCHER and self.datapaths.get(dp_id) is datapath:
            del self.datapaths[dp_id]
            self._forget_barriers(dp_id)
            self._do(self.core.switch_disconnected, dp_id, time.time())

    def _forget_barriers(self, dp_id: int) -> None:
        # Replies and errors from an earlier connection never count (their xids may come again).
        with self.core.lock:
            self.in_flight.forget(dp_id)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def _barrier_reply(self, ev):
        msg = ev.msg
        dp_id = msg.datapath.id
        if self.datapaths.get(dp_id) is not msg.datapath:
            return
        with self.core.lock:
            generation = self.in_flight.barrier_replied(dp_id, msg.xid)
            if generation is not None:
                # The last confirmation of a sync's additions releases its deletions.
                self._send(self.core.barrier_replied(dp_id, generation, time.time()))
                return
            checked = self.in_flight.bundle_checked(dp_id, msg.xid)
            if checked is not None:         # else a barrier between phases of a sync
                # A bundle's adds are in: commit it, or discard it if one was refused.
                self._send(self.core.bundle_checked(dp_id, *checked, time.time()))

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def _flow_stats(self, ev):
        self._dump_part(ev.msg, self.core.flows_dumped)

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply, MAIN_DISPATCHER)
    def _group_desc(self, ev):
        self._dump_part(ev.msg, self.core.groups_dumped)

    @set_ev_cls(ofp_event.EventOFPMeterConfigStatsReply, MAIN_DISPATCHER)
    def _meter_config(self, ev):
        self._dump_part(ev.msg, self.core.meters_dumped)

    def _dump_part(self, msg, method) -> None:
        # Replies come in parts (OFPMPF_REPLY_MORE); the core gathers them.
        if self.datapaths.get(msg.datapath.id) is not msg.datapath:
            return
        more = bool(msg.flags & ofp.OFPMPF_REPLY_MORE)
        self._do(method, msg.datapath.id, msg.body, time.time(), more)

    @set_ev_cls(ofp_event.EventOFPPortStatus, MAIN_DISPATCHER)
    def _port_status(self, ev):
        msg = ev.msg
        dp_id = msg.datapath.id
        if msg.desc.port_no > ofp.OFPP_MAX:
            return
        deleted = msg.reason == ofp.OFPPR_DELETE
        self._do(self.core.port_changed, dp_id, port_from_ofp(msg.desc), deleted, time.time())

    @set_ev_cls(ofp_event.EventOFPPortDescStatsReply, MAIN_DISPATCHER)
    def _port_desc(self, ev):
        # Asked for after port mods (controller.ports): what the switch made of them.
        msg = ev.msg
        if self.datapaths.get(msg.datapath.id) is not msg.datapath:
            return
        ports = [port_from_ofp(p) for p in msg.body if p.port_no <= ofp.OFPP_MAX]
        self._do(self.core.ports_described, msg.datapath.id, ports, time.time())

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        msg = ev.msg
        in_port = msg.match.get("in_port")
        if in_port is None:
            return
        self._do(self.core.packet_in, msg.datapath.id, in_port, bytes(msg.data), time.time())

    @set_ev_cls(ofp_event.EventOFPPortStatsReply, MAIN_DISPATCHER)
    def _port_stats(self, ev):
        now = time.time()
        samples = {s.port_no: PortSample(now, s.tx_bytes, s.rx_bytes, s.tx_packets, s.rx_packets,
                                         s.tx_dropped, s.rx_dropped)
                   for s in ev.msg.body if s.port_no <= ofp.OFPP_MAX}
        self.core.port_stats(ev.msg.datapath.id, samples)

    @set_ev_cls(ofp_event.EventOFPMeterStatsReply, MAIN_DISPATCHER)
    def _meter_stats(self, ev):
        with self.core.lock:
            self.core.meter_stats(ev.msg.datapath.id, ev.msg.body, time.time())

    @set_ev_cls(ofp_event.EventOFPGroupStatsReply, MAIN_DISPATCHER)
    def _group_stats(self, ev):
        with self.core.lock:
            self.core.group_stats(ev.msg.datapath.id, ev.msg.body, time.time())

    @set_ev_cls(ofp_event.EventOFPErrorMsg, [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        # A refused dump, a refused mod (matched by xid), or something else (logged).
        msg = ev.msg
        with self.core.lock:
            current = self.datapaths.get(msg.datapath.id) is msg.datapath
            self._send(refusals.error_received(self.core, self.in_flight if current else None,
                                               msg.datapath.id or 0, msg, time.time()))
