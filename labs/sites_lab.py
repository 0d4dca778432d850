"""The multi-site lab: a Foresight controller process and the sites of
``topologies.sites`` built for it, started together and stopped together.

    lab = SitesLab(default_spec(), policy=POLICY).start()   # controller, sites, route managers
    lab.stitching().create(...)                             # the stitching API
    lab.ping("a-h1", "b-h1")
    lab.stop()                                              # every process, namespace and file

With a ``policy`` the controller runs the stitching app, listens for gRPC on a unix
socket in the run directory (a site namespace cannot reach the root namespace's
loopback) and every site runs a route manager; ``start`` returns once every site's
switch is connected and every route manager has advertised its hosts.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from labs.lab import ControllerProcess
from topologies.processes import LabError, ensure_ovs
from topologies.sites import SitesNetwork, SitesSpec

LOG = logging.getLogger(__name__)

STITCHING_PROVIDER = "apps.stitching.app:provider"


class SitesLab(SitesNetwork):
    """``policy``: the stitching policy rules (``stitching.policy``); None runs the
    controller without the stitching app and without route managers. ``advertise_s``:
    how often route managers advertise their hosts."""

    def __init__(self, spec: SitesSpec, controller_config: dict | None = None, workdir: Path | None = None,
                 policy: list[dict] | None = None, advertise_s: float = 1.0):
        super().__init__(spec)
        self.policy = policy
        self.advertise_s = advertise_s
        self.workdir = Path(workdir or self.rundir / "lab")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.grpc_socket = self.rundir / "grpc.sock"
        config = dict(controller_config or {})
        config["topology"] = self.spec.controller_topology()
        if self.policy is not None:
            ctl = config.setdefault("controller", {})
            ctl["providers"] = [*ctl.get("providers", []), STITCHING_PROVIDER]
            ctl.setdefault("grpc", {})["unix_socket"] = str(self.grpc_socket)
            config["stitching"] = {"store_path": str(self.workdir / "stitching.sqlite"),
                                   "policy": self.policy,
                                   "advert_ttl_s": max(3.0, 4 * self.advertise_s),
                                   **config.get("stitching", {})}
        self.controller = ControllerProcess(config, self.workdir)
        self._stitching = None

    @property
    def client(self):
        return self.controller.client

    # ---- up ------------------------------------------------------------------------

    def start(self, wait_s: float = 30.0) -> "SitesLab":
        try:
            ensure_ovs()            # the tools; each site runs its own daemons
            self.controller.start()
            self.build(self.controller.of_port)
            self.wait_switches(wait_s)
            if self.policy is not None:
                self.start_route_managers(self.grpc_socket, self.advertise_s)
                self.wait_advertised(wait_s)
        except BaseException:
            if self.controller.proc is not None:
                LOG.error("controller log:\n%s", self.controller.log_tail())
            self.stop()
            raise
        return self

    def wait_switches(self, timeout_s: float = 30.0) -> None:
        want = {self.spec.dp_id(s) for s in self.spec.sites}
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {s.dp_id for s in self.client.topology().switches if s.connected}
            if want <= seen:
                return
            if time.monotonic() > deadline:
                missing = ", ".join(f"site-{s}" for s in self.spec.sites if self.spec.dp_id(s) not in seen)
                raise LabError(f"sites did not connect to the controller in {timeout_s:g} s: {missing}")
            time.sleep(0.2)

    def stitching(self):
        """A client of the controller's stitching API (closed with the lab)."""
        if self._stitching is None:
            from apps.stitching.client import StitchingClient
            self._stitching = StitchingClient(self.controller.grpc_address)
        return self._stitching

    def wait_advertised(self, timeout_s: float = 30.0) -> None:
        """Until every site's route manager has advertised all its hosts."""
        client = self.stitching()
        deadline = time.monotonic() + timeout_s
        want = {s: {h.name for h in self.spec.hosts if h.site == s} for s in self.spec.sites}
        while True:
            seen = {site.advertisement.site: {h.name for h in site.advertisement.hosts}
                    for site in client.sites()}
            missing = [s for s in self.spec.sites if not want[s] <= seen.get(s, set()) or s not in seen]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise LabError(f"route managers of site(s) {', '.join(missing)} did not advertise in "
                               f"{timeout_s:g} s; see {self.sites[missing[0]].rundir / 'routemgr.log'}")
            time.sleep(0.2)

    # ---- down ----------------------------------------------------------------------

    def stop(self) -> None:
        """The sites first (route managers, switches, namespaces), then the controller,
        then the run directory, which holds the controller's state and log."""
        self.stop_sites()
        if self._stitching is not None:
            self._stitching.close()
            self._stitching = None
        self.controller.stop()
        self.remove_files()

    def __enter__(self) -> "SitesLab":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
