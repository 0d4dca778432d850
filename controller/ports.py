"""Port admin state: the part of the controller core that holds ports administratively down.

Providers say which ports of a switch they want held down (``Desired.ports_down``: a
spare link kept out of service by ``apps.links``); the core takes the union over
providers per switch. Whenever what a switch is wanted to be differs from what its
ports report (``Port.admin_down``, from ``OFPPC_PORT_DOWN`` in the port's config) — at
connect, on every sync, when a port status shows someone set it back — the core sends
an ``OFPPortMod`` (``port_mod``) through the one send path: config ``OFPPC_PORT_DOWN``
or 0, mask ``OFPPC_PORT_DOWN``, the port's own hardware address. On Open vSwitch that
takes the interface itself down, so the far end loses carrier and the link leaves
the topology; up again, LLDP finds it.

Whose admin-down is it? The core remembers the ports it holds (``ports_held``): those
it set down for a provider, and those a provider wanted down that it found down
already (adopted: the provider's wish covers them). A held port no provider wants
any more is brought back up — a released spare comes into service, also after a
restart, as ``ports_held`` is saved with the core's state (``controller.state``). A
port admin-down that no provider ever wanted is someone else's and is left alone.

Open vSwitch (as OpenFlow 1.0-1.3 ask) sends no port status to the controller whose
port mod changed a port's config, only when the link state changes as a result: so
the port mods to a switch are followed by a port-description request, and its reply
(``ports_described``) tells the core what the ports are now. Each port mod is
remembered until a port status or description confirms it, so a sync that runs
again meanwhile does not send it again; an unconfirmed one is sent again after
``RETRY_S`` (a switch may refuse it: the error is logged by the shell), at most
``TRIES`` times, then reported until the switch reconnects or the wish changes.
Port mods are counted (``port_mods_down``, ``port_mods_up``) and each is logged with
the port and why.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller import flows
from controller.desired import Desired
from controller.sync import Out, locked
from controller.topology import Port

# The core's parts log as the core: one logger to configure and to filter on.
LOG = logging.getLogger("controller.core")

RETRY_S = 5.0       # an unconfirmed port mod is sent again after this long ...
TRIES = 3           # ... at most this many times in all


def port_mod(port: Port, down: bool) -> parser.OFPPortMod:
    """Take ``port`` administratively down (or back up), nothing else about it changed."""
    return parser.OFPPortMod(datapath=None, port_no=port.port_no, hw_addr=port.hw_addr,
                             config=ofp.OFPPC_PORT_DOWN if down else 0, mask=ofp.OFPPC_PORT_DOWN,
                             advertise=0)


@dataclass(frozen=True)
class _Sent:
    down: bool
    at: float
    tries: int


class PortAdmin:
    """Ports held down for providers: a part of ``ControllerCore`` (it reads the core's
    topology, switches and providers' wishes, which ``desired`` gathers)."""

    def _init_ports(self) -> None:
        # dp_id -> provider -> the ports it wants down there (as its last desired() said).
        self._ports_wanted: dict[int, dict[str, frozenset[int]]] = {}
        self.ports_held: set[tuple[int, int]] = set()       # (dp_id, port_no): see the module docstring
        self.held_version = 0                               # bumped when ports_held changes (saves)
        self._port_mods_sent: dict[tuple[int, int], _Sent] = {}
        self._port_mods_given_up: set[tuple[int, int]] = set()

    def _note_ports_wanted(self, dp_id: int, provided: dict[str, Desired | None]) -> None:
        """What each provider wants down on ``dp_id`` (None: it failed; its last wish stands)."""
        before = self._ports_wanted.get(dp_id, {})
        now = {}
        for name, desired in provided.items():
            ports = before.get(name, frozenset()) if desired is None else frozenset(desired.ports_down)
            if ports:
                now[name] = ports
        if now:
            self._ports_wanted[dp_id] = now
        else:
            self._ports_wanted.pop(dp_id, None)

    def ports_wanted_down(self, dp_id: int) -> dict[int, list[str]]:
        """Port -> the providers that want it held down on ``dp_id``."""
        out: dict[int, list[str]] = {}
        for name, ports in sorted(self._ports_wanted.get(dp_id, {}).items()):
            for port in ports:
                out.setdefault(port, []).append(name)
        return out

    def _hold(self, key: tuple[int, int], held: bool) -> None:
        if held and key not in self.ports_held:
            self.ports_held.add(key)
            self.held_version += 1
        elif not held and key in self.ports_held:
            self.ports_held.discard(key)
            self.held_version += 1

    def _forget_port(self, dp_id: int, port_no: int) -> None:
        """The port is gone from the switch: nothing of it is held or in flight."""
        key = (dp_id, port_no)
        self._hold(key, False)
        self._port_mods_sent.pop(key, None)
        self._port_mods_given_up.discard(key)

    def _forget_port_mods(self, dp_id: int) -> None:
        """A (re)connected switch: what was in flight to its earlier connection counts no more."""
        for key in [k for k in self._port_mods_sent if k[0] == dp_id]:
            del self._port_mods_sent[key]
        self._port_mods_given_up = {k for k in self._port_mods_given_up if k[0] != dp_id}

    def _port_mods(self, dp_id: int, now: float, why: str) -> Out:
        """The port mods that bring ``dp_id``'s ports to the admin state wanted (``why``:
        what prompted the check, for the log)."""
        switch = self.topology.switches.get(dp_id)
        if dp_id not in self.switches or switch is None:
            return []
        wanted = self.ports_wanted_down(dp_id)
        missing = sorted(set(wanted) - set(switch.ports))
        if missing:
            self._report(dp_id, [f"provider {', '.join(wanted[p])} wants port {p} held down; the switch has "
                                 f"no such port" for p in missing])
        out: Out = []
        for port in sorted(switch.ports.values(), key=lambda p: p.port_no):
            key = (dp_id, port.port_no)
            want = port.port_no in wanted
            if want == port.admin_down:
                if want:
                    self._hold(key, True)           # ours now, whoever set it down first
                else:
                    self._hold(key, False)          # up: nothing of ours to bring back
                self._port_mods_sent.pop(key, None)
                self._port_mods_given_up.discard(key)
                continue
            if not want and key not in self.ports_held:
                continue                            # admin-down, not by us: someone else's
            msg = self._port_mod_due(key, port, want, now)
            if msg is None:
                continue
            if want:
                self._hold(key, True)               # saved before the switch confirms
                reason = f"held down by {', '.join(wanted[port.port_no])}"
            else:
                reason = "released: no app holds it now and we took it down"
            tries = self._port_mods_sent[key].tries
            self.counters["port_mods_down" if want else "port_mods_up"] += 1
            LOG.info("%s port %d (%s): port mod admin %s: %s (%s%s)", self.switch_label(dp_id), port.port_no,
                     port.name or "?", "down" if want else "up", reason, why,
                     f", try {tries} of {TRIES}" if tries > 1 else "")
            out.append((dp_id, msg))
        if out:     # the reply says what the switch made of them (``ports_described``)
            out.append((dp_id, flows.port_desc_request()))
        return out

    def _port_mod_due(self, key: tuple[int, int], port: Port, down: bool, now: float):
        """The port mod to send now, or None while the same one is in flight (or given up)."""
        sent = self._port_mods_sent.get(key)
        if sent is not None and sent.down == down:
            if now - sent.at < RETRY_S or key in self._port_mods_given_up:
                return None
            if sent.tries >= TRIES:
                self._port_mods_given_up.add(key)
                self.counters["port_mods_given_up"] += 1
                LOG.error("%s port %d (%s): still admin %s after %d port mods; giving up until the wish "
                          "changes or the switch reconnects", self.switch_label(key[0]), port.port_no,
                          port.name or "?", "up" if down else "down", sent.tries)
                return None
            tries = sent.tries + 1
        else:
            tries = 1
            self._port_mods_given_up.discard(key)
        self._port_mods_sent[key] = _Sent(down, now, tries)
        return port_mod(port, down)

    def _port_mod_retries(self, now: float) -> Out:
        """Port mods not confirmed within ``RETRY_S``, checked again (from ``tick``)."""
        due = sorted({dp for (dp, port), sent in self._port_mods_sent.items()
                      if now - sent.at >= RETRY_S and (dp, port) not in self._port_mods_given_up})
        out: Out = []
        for dp_id in due:
            out += self._port_mods(dp_id, now, "not confirmed by a port status")
        return out

    @locked
    def ports_described(self, dp_id: int, described: list[Port], now: float) -> Out:
        """A switch's port description (asked for after port mods): Open vSwitch, like
        OpenFlow 1.0-1.3 switches generally, sends no port status to the controller
        whose port mod changed a port's config (only when the link state changes as a
        result), so this is how the core learns the mod took effect. Ports whose state
        differs from what the core has are handled as a port status."""
        switch = self.topology.switches.get(dp_id)
        if dp_id not in self.switches or switch is None:
            return []
        out: Out = []
        for port in described:
            had = switch.ports.get(port.port_no)
            if had is None or (had.up, had.admin_down) != (port.up, port.admin_down):
                out += self.port_changed(dp_id, port, False, now)
        return out

    @locked
    def held_ports(self) -> list[tuple[int, int]]:
        """(dp_id, port_no) of every port held down for a provider, sorted."""
        return sorted(self.ports_held)
