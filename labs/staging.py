"""Staging, step 2: a change rehearsed on a copy of the network before it deploys.

The provisioning app loads ``rehearsal(view, options)`` when its config says
``provisioning.rehearsal: "labs.staging:rehearsal"`` (``rehearsal_options`` are the
options below); the engine calls ``rehearse`` while staging a change, ``deployed`` and
``rolled_back`` after production did, and ``close`` at shutdown
(``apps.provisioning.engine.Rehearsal``).

The copy, brought up on the first ``rehearse`` (CrystalNet's idea: production's own
software, configuration and state, on emulated devices):

- a second controller process running production's config (``copy_config``) with its
  own ports and state files, no rehearsal, no automatic provisioning, no slice scaling
  and no predictor, started from copies of production's slices and provisioning state
  files (``copied_stores``): it starts with production's slices and with the changes
  production has deployed;
- the same catalogue topology in Mininet (``topology``, ``spares``, ``capacities``, ``bw_scale``,
  ``hosts_per_switch``, ... as production's ``Lab``), every node name prefixed
  (``prefix``, default ``st``: bridges ``sts1``, hosts ``sth1``) so nothing clashes
  with production's Mininet on the same machine, with production's datapath ids, host
  MACs and IPs (templates render the same, the slices' members are the same hosts).

Both live in a keeper process, ``labs.staging_copy``, not in the controller process:
the controller leaves within 1.5 s of SIGTERM through ``os._exit`` (no ``atexit``) and
a lab kills it after 5 s, too soon to take a network down. The keeper tears the copy
down, by handle, when told to, on SIGTERM, SIGINT or SIGHUP, and when its parent goes
(its stdin closes): however the controller ends, the copy follows it.

``rehearse(change, rendered)`` stages and deploys the change in the copy through the
copy's provisioning API, probes, and always rolls it back there. Its checks:

- ``rehearsal:apply``: the copy staged and deployed it (else the copy's own failing
  check);
- ``rehearsal:reach``: each promised host pair pings both ways in the copy;
- ``rehearsal:rate``: for a promised rate (``slice:NAME`` or an ``od_path`` pair), UDP
  (``labs/tm_peer.py``) at that rate, or at the change's forecast need when smaller,
  for ``probe_s`` from a client host (``clients[NAME]``, else the first host that is not
  a member) to the slice's service VIP (or from one host of the pair to the other),
  counted at the receivers: it passes when they got at least ``min_delivered`` of the
  offered rate and no more than ``max_loss`` of what was sent was lost.

``deployed`` stages and deploys the same template and parameters in the copy and
remembers production's change id -> the copy's; ``rolled_back`` rolls the copy's back.
Before the copy exists both do nothing: it will be copied from the state they left.
"""

from __future__ import annotations

import atexit
import copy as copying
import json
import logging
import os
import queue
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Mapping

import grpc
from pydantic import Field, ValidationError, field_validator

from apps.provisioning.changes import Change, Check
from apps.provisioning.client import ProvisioningClient
from apps.provisioning.templates import Rendered
from apps.slices.client import SlicesClient
from controller.config import Section
from labs.lab import ROOT, _tail
from proto import provisioning_pb2 as ppb
from topologies.processes import terminate

LOG = logging.getLogger(__name__)

COPIED_STORES = ("slices", "provisioning")  # sections whose state file the copy starts from
STATUS_FILE = "staging.json"  # in the workdir: the keeper's and the copy controller's pids, ...
PLACED_TIMEOUT_S = 5.0


class StagingError(RuntimeError):
    """The copy cannot be brought up or used; the message says what failed."""


class StagingOptions(Section):
    """``provisioning.rehearsal_options``."""

    topology: str = Field(min_length=1)  # catalogue name, as production's Lab
    # spare links production's topology adds (``TopologySpec.with_spare``): [a, b, capacity]
    spares: tuple[tuple[str, str, float], ...] = ()
    # link capacities production's topology sets (``TopologySpec.with_capacity``): [a, b, capacity]
    capacities: tuple[tuple[str, str, float], ...] = ()
    bw_scale: float = Field(default=0.001, gt=0)
    max_bw_mbps: float = Field(default=1000.0, gt=0)
    link_bw: bool = True
    hosts_per_switch: int = Field(default=1, ge=0)
    prefix: str = Field(default="st", pattern=r"^[a-z][a-z0-9]{0,5}$")
    workdir: str = ""  # "" a temporary directory, removed when the copy goes
    clients: dict[str, str] = {}  # slice name -> IPv4 of the host that offers its traffic
    probe_s: float = Field(default=2.0, gt=0, le=30)  # seconds of UDP per rate check
    min_delivered: float = Field(default=0.95, gt=0, le=1)  # delivered / offered to pass
    max_loss: float = Field(default=0.02, ge=0, lt=1)  # lost / sent to pass
    start_timeout_s: float = Field(default=180.0, gt=0)  # bringing the copy up
    close_wait_s: float = Field(default=0.0, ge=0)  # close() waits this long; the keeper finishes alone

    @field_validator("clients")
    @classmethod
    def _clients(cls, v):
        import ipaddress

        for name, ip in v.items():
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise ValueError(f"{name}: not an IPv4 address: {ip!r}") from None
        return v


# ---- pure parts ------------------------------------------------------------------------------


def copy_config(production: Mapping, workdir: Path) -> dict:
    """The copy controller's config: production's (``Config.model_dump(mode="json")``)
    with its own state files in ``workdir`` (each app's ``store_path`` becomes
    ``<workdir>/<section>.sqlite``; other ``*_path`` files, decision logs, are not
    written), no unix socket, OpenFlow on loopback, no predictor, no rehearsal, no
    automatic provisioning and no slice scaling. Ports are the ``ControllerProcess``'s."""
    cfg = copying.deepcopy(dict(production))
    ctl = cfg.setdefault("controller", {})
    ctl.setdefault("openflow", {})["listen_host"] = "127.0.0.1"
    grpc_ = ctl.setdefault("grpc", {})
    grpc_["listen_host"] = "127.0.0.1"
    grpc_["unix_socket"] = ""
    ctl.setdefault("state", {})["path"] = str(workdir / "controller.sqlite")
    ctl.setdefault("predictor", {})["address"] = ""
    for name, section in cfg.items():
        if name in ("controller", "topology") or not isinstance(section, dict):
            continue
        for key, value in list(section.items()):
            if key == "store_path" and value:
                section[key] = str(workdir / f"{name}.sqlite")
            elif key.endswith("_path") and value:
                section[key] = ""
    if isinstance(cfg.get("slices"), dict):
        cfg["slices"].setdefault("scaling", {})["enabled"] = False
    prov = cfg.setdefault("provisioning", {})
    prov.update(rehearsal="", rehearsal_options={}, auto=False)
    return cfg


def copied_stores(production: Mapping, workdir: Path) -> dict[str, str]:
    """{the copy's state file: production's} for the sections the copy starts from."""
    out = {}
    for name in COPIED_STORES:
        source = (production.get(name) or {}).get("store_path", "")
        if source:
            out[str(workdir / f"{name}.sqlite")] = source
    return out


def offered_rate(promise_mbps: float, need_mbps: float) -> tuple[float, str]:
    """The rate a rate check offers: the promise, or the forecast need when it is smaller."""
    if 0 < need_mbps < promise_mbps:
        return need_mbps, f"the forecast need (promised {promise_mbps:g})"
    return promise_mbps, "the promised rate"


def judge_rate(
    offered_mbps: float,
    basis: str,
    seconds: float,
    sent_bytes: int,
    received_bytes: int,
    min_delivered: float = 0.95,
    max_loss: float = 0.02,
) -> tuple[bool, str]:
    """Pass when the receivers got ``min_delivered`` of the offered rate and lost at most
    ``max_loss`` of what was sent; the detail gives the numbers."""
    sent_mbps = sent_bytes * 8 / seconds / 1e6
    delivered_mbps = received_bytes * 8 / seconds / 1e6
    share = delivered_mbps / offered_mbps if offered_mbps else 0.0
    loss = 1 - received_bytes / sent_bytes if sent_bytes else 1.0
    loss = max(0.0, loss)
    ok = share >= min_delivered and loss <= max_loss
    detail = (
        f"offered {offered_mbps:g} Mbit/s ({basis}) for {seconds:g} s: sent {sent_mbps:.2f}, "
        f"delivered {delivered_mbps:.2f} Mbit/s ({share:.1%} of offered), loss {loss:.1%}"
    )
    if not ok:
        why = []
        if share < min_delivered:
            why.append(f"delivered below {min_delivered:.0%} of offered")
        if loss > max_loss:
            why.append(f"loss above {max_loss:.0%}")
        detail += ": " + " and ".join(why)
    return ok, detail


def directions(pairs) -> list[tuple[str, str]]:
    """Each pair both ways, once, in a stable order."""
    out: dict[tuple[str, str], None] = {}
    for a, b in pairs:
        out[(a.lower(), b.lower())] = None
        out[(b.lower(), a.lower())] = None
    return list(out)


def pick_client(hosts: list[dict], members: set[str], configured: str = "") -> str:
    """The IPv4 the slice's traffic comes from: ``configured``, else the first host (in
    topology order) that is not a member."""
    if configured:
        return configured
    return next((h["ip"] for h in hosts if h["ip"] not in members), "")


# ---- the keeper, seen from the controller --------------------------------------------------


class Keeper:
    """The ``labs.staging_copy`` process: JSON lines in on its stdin, out on its stdout."""

    def __init__(self, spec: dict, workdir: Path):
        self.workdir = workdir
        self.spec_path = workdir / "copy-spec.json"
        self.spec_path.write_text(json.dumps(spec, indent=1))
        self.log_path = workdir / "keeper.log"
        self.proc: subprocess.Popen | None = None
        self._lines: queue.Queue = queue.Queue()
        self.ready: dict = {}
        self.broken = False  # an answer never came: what it says next cannot be trusted

    def start(self, timeout_s: float) -> dict:
        log = open(self.log_path, "ab")
        try:
            # Its own session: a terminal's ^C reaches the controller, whose end closes our stdin.
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "labs.staging_copy", str(self.spec_path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=ROOT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        finally:
            log.close()
        threading.Thread(target=self._read, name="staging-keeper", daemon=True).start()
        reply = self._reply(timeout_s, "bringing the copy up")
        if "ready" not in reply:
            raise StagingError(f"the copy did not come up: {reply.get('error', reply)}")
        self.ready = reply["ready"]
        return self.ready

    def _read(self) -> None:
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _reply(self, timeout_s: float, what: str) -> dict:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            self.broken = True
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)  # it takes the copy down; the next _ensure waits
            raise StagingError(f"{what}: no answer from the keeper in {timeout_s:g} s") from None
        if line is None:
            raise StagingError(f"{what}: the keeper ended; its log: {_tail(self.log_path, 15)}")
        return json.loads(line)

    def call(self, op: str, timeout_s: float, **args) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            raise StagingError(f"{op}: the keeper is not running; its log: {_tail(self.log_path, 15)}")
        try:
            self.proc.stdin.write(json.dumps(dict(op=op, **args)) + "\n")
            self.proc.stdin.flush()
        except OSError as err:
            raise StagingError(f"{op}: cannot reach the keeper: {err}") from None
        reply = self._reply(timeout_s, op)
        if "error" in reply:
            raise StagingError(f"{op}: {reply['error']}")
        return reply

    def stop(self, wait_s: float | None) -> None:
        """Ask it to take the copy down; wait ``wait_s`` (None: until it is done). A keeper
        still tearing down when the wait ends finishes alone."""
        if self.proc is None:
            return
        if not self.proc.stdin.closed:
            try:
                if self.proc.poll() is None:
                    self.proc.stdin.write(json.dumps({"op": "stop"}) + "\n")
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            LOG.info("staging: the keeper (pid %d) is still taking the copy down", self.proc.pid)

    def kill(self) -> None:
        """A keeper that does not answer: SIGTERM (it tears down), SIGKILL after 60 s."""
        terminate(self.proc, 60.0)


class _Copy:
    """The copy while it is up: its keeper and clients of its controller's APIs."""

    def __init__(self, keeper: Keeper, ready: dict):
        self.keeper = keeper
        self.ready = ready
        self.hosts: list[dict] = ready["hosts"]  # [{name, mac, ip}] in topology order
        self.by_mac = {h["mac"]: h for h in self.hosts}
        self.provisioning = ProvisioningClient(ready["grpc"], timeout_s=10.0)
        self.slices = SlicesClient(ready["grpc"], timeout_s=10.0)
        self.inherited = set(ready.get("deployed", ()))  # production's change ids deployed in the copy

    def close(self) -> None:
        self.provisioning.close()
        self.slices.close()


class MininetRehearsal:
    """``apps.provisioning.engine.Rehearsal`` on a Mininet copy (the module docstring)."""

    def __init__(self, view, options: StagingOptions):
        self.view = view
        self.options = options
        self._lock = threading.Lock()  # one rehearsal or mirrored step at a time
        self._copy: _Copy | None = None
        self._closed = False
        self.ids: dict[str, str] = {}  # production change id -> the copy's
        self.rehearsals = 0
        atexit.register(self.close)

    # ---- bringing the copy up -----------------------------------------------------------------
    def _workdir(self) -> tuple[Path, bool]:
        if self.options.workdir:
            path = Path(self.options.workdir)
            path.mkdir(parents=True, exist_ok=True)
            return path, False
        return Path(tempfile.mkdtemp(prefix="foresight-staging-")), True

    def _ensure(self) -> tuple[_Copy, float]:
        """The copy, brought up if it is not; and how long that took (0 if it was up)."""
        if self._closed:
            raise StagingError("the rehearsal is closed")
        if self._copy is not None and not self._copy.keeper.broken and self._copy.keeper.proc.poll() is None:
            return self._copy, 0.0
        if self._copy is not None:
            LOG.warning(
                "staging: the copy is gone or does not answer (log %s); bringing it up again",
                self._copy.keeper.log_path,
            )
            self._copy.close()
            self._copy.keeper.kill()  # the old copy's bridges must be gone before the new one's
            self._copy = None
        t0 = time.perf_counter()
        workdir, own = self._workdir()
        production = self.view.config.model_dump(mode="json")
        o = self.options
        spec = dict(
            config=copy_config(production, workdir / "state"),
            stores=copied_stores(production, workdir / "state"),
            topology=o.topology,
            spares=[list(x) for x in o.spares],
            capacities=[list(x) for x in o.capacities],
            bw_scale=o.bw_scale,
            max_bw_mbps=o.max_bw_mbps,
            link_bw=o.link_bw,
            hosts_per_switch=o.hosts_per_switch,
            prefix=o.prefix,
            workdir=str(workdir),
            own_workdir=own,
        )
        keeper = Keeper(spec, workdir)
        try:
            ready = keeper.start(o.start_timeout_s)
        except BaseException:
            keeper.kill()
            if own and os.environ.get("FORESIGHT_KEEP_LAB") is None:
                shutil.rmtree(workdir, ignore_errors=True)
            raise
        self._copy = _Copy(keeper, ready)
        self.ids.clear()  # a new copy holds what production deployed under production's own ids
        took = time.perf_counter() - t0
        LOG.info(
            "staging: copy up in %.1f s: keeper pid %d, controller pid %d at %s, %d host(s), workdir %s",
            took,
            keeper.proc.pid,
            ready["controller_pid"],
            ready["grpc"],
            len(ready["hosts"]),
            workdir,
        )
        return self._copy, took

    # ---- the protocol -------------------------------------------------------------------------
    def rehearse(self, change: Change, rendered: Rendered) -> list[Check]:
        with self._lock:
            self.rehearsals += 1
            checks: list[Check] = []
            copy_id = ""
            copy, brought_up_s = self._ensure()
            apply, copy_id = self._apply(copy, change, "rehearsal:apply")
            if not apply.ok and copy.keeper.broken:
                # The copy failed, not the change: once more on a new copy.
                LOG.warning("staging: %s; bringing a new copy up for %s", apply.detail, change.id)
                copy, brought_up_s = self._ensure()
                apply, copy_id = self._apply(copy, change, "rehearsal:apply")
            try:
                if brought_up_s:
                    apply.detail = f"copy brought up in {brought_up_s:.1f} s; {apply.detail}"
                checks.append(apply)
                if apply.ok:
                    checks.append(self._reach(copy, rendered))
                if apply.ok and checks[-1].ok:
                    checks.append(self._rate(copy, change, rendered))
            finally:
                if copy_id:
                    self._undo(copy, copy_id, f"rehearsal of {change.id} done")
            return checks

    def deployed(self, change: Change) -> None:
        with self._lock:
            if self._copy is None:
                return  # no copy yet: it will be copied from production's state
            check, copy_id = self._apply(self._copy, change, "mirror")
            if not check.ok:
                raise StagingError(f"the copy did not follow the deploy of {change.id}: {check.detail}")
            self.ids[change.id] = copy_id

    def rolled_back(self, change: Change) -> None:
        with self._lock:
            if self._copy is None:
                return
            copy_id = self.ids.pop(change.id, "")
            if not copy_id and change.id in self._copy.inherited:
                copy_id = change.id  # deployed before the copy was made: the copy has its record
                self._copy.inherited.discard(change.id)
            if not copy_id:
                raise StagingError(f"the copy has no change for {change.id} to roll back")
            self._undo(self._copy, copy_id, f"production rolled back {change.id}")

    def close(self) -> None:
        self._closed = True
        copy, self._copy = self._copy, None
        if copy is None:
            return
        copy.close()
        copy.keeper.stop(self.options.close_wait_s)

    def stop(self, wait_s: float | None = None) -> None:
        """``close``, waiting for the copy to be down (``None``: however long it takes)."""
        copy = self._copy
        self.close()
        if copy is not None:
            copy.keeper.stop(wait_s)

    # ---- the steps ----------------------------------------------------------------------------
    def _apply(self, copy: _Copy, change: Change, name: str) -> tuple[Check, str]:
        """Stage then deploy ``change``'s template and parameters in the copy."""
        t0 = time.perf_counter()
        try:
            staged = copy.provisioning.stage(
                template=change.template, params=dict(change.params), timeout_s=60
            )
            if staged.state != ppb.STAGED:
                return Check(
                    name,
                    False,
                    f"the copy's staging of {staged.id} failed: {staged.detail}",
                    time.perf_counter() - t0,
                ), ""
            done = copy.provisioning.deploy(staged.id, timeout_s=60)
        except grpc.RpcError as err:
            if err.code() == grpc.StatusCode.UNAVAILABLE:
                copy.keeper.broken = True  # the copy's controller is gone: a new copy next time
            return Check(
                name,
                False,
                f"the copy refused it: {err.code().name}: {err.details()}",
                time.perf_counter() - t0,
            ), ""
        if done.state != ppb.DEPLOYED:
            # The copy's engine rolled it back already.
            return Check(
                name,
                False,
                f"the copy's deploy of {done.id} failed: {done.detail}",
                time.perf_counter() - t0,
            ), ""
        took = time.perf_counter() - t0
        return Check(
            name, True, f"staged and deployed in the copy as {done.id} in {took:.2f} s", took
        ), done.id

    def _undo(self, copy: _Copy, copy_id: str, reason: str) -> None:
        try:
            done = copy.provisioning.rollback(copy_id, reason)
        except grpc.RpcError as err:
            LOG.warning(
                "staging: the copy did not roll %s back: %s: %s", copy_id, err.code().name, err.details()
            )
            return
        if done.state != ppb.ROLLED_BACK or not done.rollback.restored:
            LOG.warning(
                "staging: the copy's rollback of %s: %s, restored %s",
                copy_id,
                ppb.ChangeState.Name(done.state),
                done.rollback.restored,
            )

    def _reach(self, copy: _Copy, rendered: Rendered) -> Check:
        t0 = time.perf_counter()
        ways = directions(rendered.promise.pairs)
        if not ways:
            return Check("rehearsal:reach", True, "no host pairs promised", time.perf_counter() - t0)
        results = copy.keeper.call("reach", timeout_s=30, pairs=ways)["results"]
        failed = [r for r in results if not r["ok"]]
        detail = (
            f"{len(results)} direction(s) reach"
            if not failed
            else "; ".join(f"{r['src']} -> {r['dst']}: {r['detail']}" for r in failed)
        )
        return Check("rehearsal:reach", not failed, detail, time.perf_counter() - t0)

    def _rate(self, copy: _Copy, change: Change, rendered: Rendered) -> Check:
        t0 = time.perf_counter()
        promise = rendered.promise
        if promise.mbps <= 0:
            return Check("rehearsal:rate", True, "no rate promised", time.perf_counter() - t0)
        kind, _, name = promise.resource.partition(":")
        if kind == "slice":
            try:
                src, dst, receivers = self._slice_ends(copy, name)
            except StagingError as err:
                return Check("rehearsal:rate", False, str(err), time.perf_counter() - t0)
        elif kind == "pair" and promise.pairs:
            a, b = (copy.by_mac.get(m.lower()) for m in promise.pairs[0])
            if a is None or b is None:
                return Check(
                    "rehearsal:rate",
                    False,
                    f"the copy has no host for {promise.resource}",
                    time.perf_counter() - t0,
                )
            src, dst, receivers = a["ip"], b["ip"], [b["ip"]]
        else:
            return Check(
                "rehearsal:rate",
                True,
                f"no rate probe for {promise.resource or 'this change'}",
                time.perf_counter() - t0,
            )
        mbps, basis = offered_rate(promise.mbps, change.need_mbps)
        o = self.options
        got = copy.keeper.call(
            "rate",
            timeout_s=o.probe_s + 30,
            src=src,
            dst=dst,
            receivers=receivers,
            mbps=mbps,
            seconds=o.probe_s,
        )
        ok, detail = judge_rate(
            mbps, basis, o.probe_s, got["sent"], got["received"], o.min_delivered, o.max_loss
        )
        return Check("rehearsal:rate", ok, f"{src} -> {dst}: {detail}", time.perf_counter() - t0)

    def _slice_ends(self, copy: _Copy, name: str) -> tuple[str, str, list[str]]:
        """(client IP, service VIP, active members' IPs) of a slice in the copy, once its
        members are placed."""
        deadline = time.monotonic() + PLACED_TIMEOUT_S
        while True:
            try:
                view = copy.slices.get(name)
            except grpc.RpcError as err:
                raise StagingError(f"slice {name!r} in the copy: {err.details()}") from None
            active = [m for m in view.members if not m.draining_until_s]
            if active and all(m.placed for m in active):
                break
            if time.monotonic() > deadline:
                raise StagingError(
                    f"slice {name!r} in the copy: {len(active)} active member(s), "
                    f"{sum(m.placed for m in active)} placed after {PLACED_TIMEOUT_S:g} s"
                )
            time.sleep(0.2)
        members = {m.ipv4 for m in active}
        src = pick_client(copy.hosts, members, self.options.clients.get(name, ""))
        if not src:
            raise StagingError(f"slice {name!r}: no host in the copy to offer its traffic from")
        return src, view.service_vip, sorted(members)


def rehearsal(view, options: Mapping) -> MininetRehearsal:
    """The factory ``provisioning.rehearsal`` names: ``options`` are ``rehearsal_options``."""
    try:
        parsed = StagingOptions.model_validate(dict(options))
    except ValidationError as err:
        e = err.errors()[0]
        where = ".".join(str(p) for p in e["loc"])
        raise StagingError(f"provisioning.rehearsal_options.{where}: {e['msg']}") from None
    return MininetRehearsal(view, parsed)
