"""An in-memory BGP speaker with ``apps.peering.gobgp.GoBgp``'s interface, for unit tests.

Neighbours are described by what they would announce (``announces``) and whether
they answer (``online``). ``add_peer`` of an online neighbour establishes its session
at once and queues its routes; ``drop`` ends a session as a dead peer would;
``flood`` makes a neighbour exceed its max-prefix limit (the session is torn down, a
NOTIFICATION counted, as GoBGP does). Events wait in ``events`` until the test hands
them to the app (``pump``), so a test decides when the speaker "speaks". The real
daemons are tested in tests/integration/test_bgp.py and the lab.
"""

from __future__ import annotations

from apps.peering.gobgp import GoBgpUnavailable, PeerEvent, PeerSpec, PeerState, Route, RouteEvent


class FakeSpeaker:
    def __init__(self, neighbours: dict[str, tuple[int, list[tuple[str, tuple[int, ...]]]]]):
        # address -> (asn, [(prefix, as_path)])
        self.announces = {a: list(routes) for a, (_, routes) in neighbours.items()}
        self.asns = {a: asn for a, (asn, _) in neighbours.items()}
        self.online = {a: True for a in neighbours}
        self.peers_: dict[str, PeerSpec] = {}
        self.state: dict[str, str] = {}
        self.notifications: dict[str, int] = {}
        self.events: list = []
        self.started: tuple | None = None
        self.reachable = True
        self.calls: list[str] = []

    def _check(self) -> None:
        if not self.reachable:
            raise GoBgpUnavailable("BGP speaker at unix:/fake: not reachable")

    # -- the GoBgp interface --
    def start(self, asn: int, router_id: str, listen_port: int = -1) -> None:
        self._check()
        self.started = (asn, router_id, listen_port)

    def add_peer(self, spec: PeerSpec) -> bool:
        self._check()
        self.calls.append(f"add {spec.address}")
        new = spec.address not in self.peers_
        self.peers_[spec.address] = spec
        if self.online.get(spec.address) and self.state.get(spec.address) != "established":
            self.establish(spec.address)
        return new

    def delete_peer(self, address: str) -> bool:
        self._check()
        self.calls.append(f"delete {address}")
        if address not in self.peers_:
            return False
        del self.peers_[address]
        if self.state.pop(address, "") == "established":
            self.events.append(
                RouteEvent(
                    tuple(Route(p, address, (), "", withdrawn=True) for p, _ in self.announces[address])
                )
            )
        return True

    def peers(self) -> list[PeerState]:
        self._check()
        return [
            PeerState(
                a,
                s.asn,
                self.state.get(a, "active"),
                False,
                "up",
                0,
                0,
                0.0,
                0,
                self.notifications.get(a, 0),
                0,
            )
            for a, s in sorted(self.peers_.items())
        ]

    def peer(self, address: str) -> PeerState | None:
        return next((p for p in self.peers() if p.address == address), None)

    def routes(self, neighbour: str | None = None) -> list[Route]:
        self._check()
        return [
            Route(p, a, path, a)
            for a in sorted(self.peers_)
            if self.state.get(a) == "established" and neighbour in (None, a)
            for p, path in self.announces[a]
        ]

    def watch(self, init: bool = True):
        self._check()
        return iter(())

    def close(self) -> None:
        pass

    # -- what the test makes happen --
    def establish(self, address: str) -> None:
        self.state[address] = "established"
        self.events.append(PeerEvent(address, self.asns[address], "established", False))
        self.events.append(
            RouteEvent(tuple(Route(p, address, path, address) for p, path in self.announces[address]))
        )

    def drop(self, address: str, notify: bool = False) -> None:
        self.state[address] = "active"
        if notify:
            self.notifications[address] = self.notifications.get(address, 0) + 1
        # GoBGP shuts a peer over its prefix limit down administratively (admin state pfx_ct).
        self.events.append(PeerEvent(address, self.asns[address], "idle" if notify else "active", notify))
        self.events.append(
            RouteEvent(tuple(Route(p, address, (), "", withdrawn=True) for p, _ in self.announces[address]))
        )

    def flood(self, address: str, extra: list[tuple[str, tuple[int, ...]]]) -> None:
        """The neighbour announces ``extra`` too: over its limit, the session is torn down."""
        self.announces[address] += extra
        spec = self.peers_[address]
        if spec.max_prefixes and len(self.announces[address]) > spec.max_prefixes:
            self.drop(address, notify=True)  # the update over the limit is not passed on
        else:
            self.events.append(RouteEvent(tuple(Route(p, address, path, address) for p, path in extra)))

    def pump(self, app) -> int:
        """Hand every queued event to the app; how many."""
        n = 0
        while self.events:
            app._on_speaker(self.events.pop(0))
            n += 1
        return n
