"""The peering app's side of the BGP speaker: one loop over GoBGP's events.

``SpeakerLink`` is a mixin of ``PeeringManager`` (as ``controller.sync`` is of the
core): it connects to GoBGP (starting its BGP, configuring the sessions the app wants,
reading every route), follows its event stream (routes into the RIB, peer states into
the sessions), turns a session lost with traffic on it into a failover and a drop over
the max-prefix limit into a teardown, and reports the app degraded while GoBGP cannot
be reached (the switch keeps the last plan; when GoBGP is back everything is read
again).
"""

from __future__ import annotations

import logging

from apps.peering.gobgp import GoBgpError, GoBgpUnavailable, PeerSpec
from apps.peering.sessions import after_bgp

LOG = logging.getLogger("apps.peering.manager")

RECONNECT_S = 1.0  # between attempts to reach the speaker
MAX_PREFIX_SHARE = 0.9  # a drop with this share of the limit held counts as a max-prefix teardown


class SpeakerLink:
    """The speaker loop (``_watch`` runs in the app's ``peering-bgp`` thread)."""

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self._connect()
                for event in self._stream:
                    if self._stop.is_set():
                        break
                    self._on_speaker(event)
            except GoBgpUnavailable as err:
                self._set_degraded(str(err))
            except GoBgpError as err:
                self._set_degraded(f"BGP speaker error: {err}")
            except Exception:  # noqa: BLE001 - the loop must survive a bug in one event
                LOG.exception("peering: speaker loop failed")
                self._set_degraded("speaker loop failed (see the log)")
            self._stop.wait(RECONNECT_S)

    def _connect(self) -> None:
        """Start the speaker's BGP, configure every wanted session, read every route."""
        s = self.settings
        self.speaker.start(s.asn, s.router_id, s.gobgp.listen_port)
        with self.lock:
            wanted = [
                n for n, sess in self.sessions.items() if sess.state in ("CONNECTING", "ESTABLISHED", "DOWN")
            ]
        for name in wanted:
            self.speaker.add_peer(self._peer_spec(name))
        self._stream = self.speaker.watch()
        states = {p.address: p for p in self.speaker.peers()}
        routes = self.speaker.routes()
        with self.lock:
            was = self.degraded
            self.degraded = ""
            now = self.clock.virtual(self.wall())
            self._configure_due(now)  # requests made while the speaker was away
            changed = 0
            for name, n in self.neighbours.items():
                peer = states.get(n.address)
                changed += self.rib.replace(name, [r for r in routes if r.neighbour == n.address])
                if peer is not None:
                    self._session_event(after_bgp(self.sessions[name], peer.state, _reason(peer), now))
            loaded, self._rib_loaded = self._rib_loaded, True
            if was:
                self._decide_log(
                    "resync",
                    now,
                    "speaker",
                    f"BGP speaker back after: {was}; "
                    f"{len(wanted)} session(s) configured again, {len(self.rib.routes)} prefixes",
                    {"prefixes": len(self.rib.routes)},
                )
        LOG.info(
            "peering: speaker %s connected: %d peer(s) configured, %d prefixes",
            s.gobgp.target,
            len(states),
            len(self.rib.routes),
        )
        if changed or was or not loaded:
            self.resync()

    def _set_degraded(self, why: str) -> None:
        with self.lock:
            if self.degraded != why:
                LOG.warning("peering: degraded (the last plan holds on the switch): %s", why)
                self.view.count("peering_speaker_lost")
            self.degraded = why

    def _on_speaker(self, event) -> None:
        now = self.clock.virtual(self.wall())
        failed = None
        with self.lock:
            routes = getattr(event, "routes", None)
            if routes is not None:
                changed = self.rib.update(routes)
            elif not hasattr(event, "address"):
                return  # the end of a watch's initial snapshot
            else:
                name = self._name_of(event.address)
                if name is None:
                    return
                session = self.sessions[name]
                was_up = session.established
                reason = _reason(event)
                limit = self.neighbours[name].max_prefixes
                held = self.rib.prefixes_from(name)
                if event.state != "established" and (
                    getattr(event, "admin_down", False) or held >= MAX_PREFIX_SHARE * limit
                ):
                    # GoBGP's API gives no reason for a drop. Nothing here shuts a peer
                    # down administratively, so an admin-down drop is GoBGP's prefix limit
                    # (its admin state "pfx_ct"); so is a drop with about the limit held.
                    reason = f"max-prefix limit {limit} exceeded ({held} prefixes learned before the drop)"
                moved = after_bgp(session, event.state, reason, now)
                self._session_event(moved)
                changed = 0
                if session.state == "TORN_DOWN" and moved is not None:
                    self._teardown(name, now, held, limit)
                if was_up and not session.established:
                    failed = name
                elif not was_up and session.established:
                    self._replan_soon()
        if failed:
            self._failover(failed, now)
            return
        if changed:
            self._routes_changed()

    def _name_of(self, address: str) -> str | None:
        return next((n for n, c in self.neighbours.items() if c.address == address), None)

    def _peer_spec(self, name: str) -> PeerSpec:
        n, g = self.neighbours[name], self.settings.gobgp
        return PeerSpec(
            address=n.address,
            asn=n.asn,
            description=name,
            max_prefixes=n.max_prefixes,
            hold_s=g.hold_s,
            keepalive_s=g.keepalive_s,
            connect_retry_s=g.connect_retry_s,
            passive=g.passive,
        )

    def _teardown(self, name: str, now: float, held: int, limit: int) -> None:
        """A neighbour went over its max-prefix limit: drop the peer from the speaker (no
        retry into the same flood) until an operator establishes or releases it."""
        if self.speaker is not None:
            try:
                self.speaker.delete_peer(self.neighbours[name].address)
            except GoBgpError as err:
                self._set_degraded(str(err))
        self.view.count("peering_max_prefix_teardowns")
        self._decide_log(
            "teardown",
            now,
            name,
            f"{name} sent {held} prefixes, over its limit of {limit}: "
            f"session torn down, its traffic stays on the other exits",
            {"prefixes": held, "limit": limit},
        )

    def _failover(self, name: str, now: float) -> None:
        """``name``'s session went away with traffic on it: each of its groups goes to
        the next exit of its failover order (where the switch's fast-failover group
        already sent it if the link went down), then its routes are forgotten."""
        with self.lock:
            by_name = {g.name: g for g in self.rib.groups()}
            moved = sorted(g for g, e in self.assignment.items() if e == name)
            cause = self.sessions[name].detail
            for g in moved:
                group = by_name.get(g)
                rest = [e for e in self.exit_order(group) if e != name] if group is not None else []
                if rest:
                    self.assignment[g] = rest[0]
                else:
                    del self.assignment[g]
                self.moved_at[g] = now
            self.rib.drop(name)
            key = (name, "session" if "session" in cause else "other")
            self.failovers[key] = self.failovers.get(key, 0) + 1
            self._decide_log(
                "failover",
                now,
                name,
                f"{name}: {cause}; {len(moved)} group(s) to their next exit "
                f"({', '.join(moved[:8])}{'...' if len(moved) > 8 else ''})",
                {"groups": len(moved)},
                event="FAILOVER",
            )
        self.resync()


def _reason(peer) -> str:
    return getattr(peer, "reason", "") or ""
