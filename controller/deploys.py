"""Deploys: the switch's answers about a sync's bundles, and rolling switches back.

With ``controller.sync.bundles`` on, ``SwitchSync._sync`` sends each switch's share of a
sync as one OpenFlow bundle up to its ``BundleCheck`` barrier (``controller.bundles``
says why the commit waits for it). The shell reports the check's reply here
(``bundle_checked``), with whether the switch refused any message added to the bundle:

- none refused, the switch still reconciled: the commit goes, then the meter deletions
  (not bundlable) and the sync's ``SyncBarrier``, whose reply confirms the change as
  for plain messages;
- one refused: the bundle is discarded, nothing of it applied. The refusal itself took
  the usual path (``SwitchSync.refused``: named, left out, the switch dumped and
  reconciled, waits failing with ``ChangeRefused``); the reconciliation sends the rest
  of the change again, as one new bundle.

A commit the switch refuses because of one of its messages (a group that exists,
a flow sending to a missing group) comes as that message's refusal, then a failed
commit (``bundle_refused``, explained): nothing was applied either. A bundle refused
for itself (the switch has no bundles, ran out of them, timed it out) is a refusal
of the whole change, reported like one with the switch and the error named; the
switch is reconciled and gets plain messages from then on.

Rollback: ``installed_state`` copies what a switch holds (once its change is
confirmed); ``restore`` pins switches to such copies — their desired state is that,
whatever the providers want — and syncs them there like any change (so bundled,
make before break across switches); ``release`` lets the providers' state back.
"""

from __future__ import annotations

import logging

from controller.bundles import BundleCommit, BundleDiscard
from controller.desired import Entries
from controller.sync import Out, Refusal, SyncBarrier, locked

LOG = logging.getLogger("controller.core")


class Deploys:
    """Bundle outcomes and rollback: a part of ``ControllerCore`` (like ``SwitchSync``,
    whose state it shares)."""

    @locked
    def bundle_checked(self, dp_id: int, generation: int, refused: bool, now: float) -> Out:
        """Switch ``dp_id`` answered the check of the bundle of ``generation``;
        ``refused``: it refused a message added to it (reported already). Returns the
        commit and what follows it, or the discard."""
        state = self.switches.get(dp_id)
        pending = state.pending.pop(generation, None) if state is not None else None
        if pending is None:
            return []
        if refused or not state.reconciled:
            self.counters["bundles_discarded"] += 1
            why = "it refused a message of it" if refused else "it is being reconciled"
            LOG.warning("%s: bundle %#x (%d messages) discarded, nothing of it applied: %s",
                        self.switch_label(dp_id), generation, pending.size, why)
            out: Out = [(dp_id, BundleDiscard(generation))]
            if self._makes_due.get(dp_id) == generation:
                # Nothing of it to confirm: what waits for its additions goes on, as after a
                # plain refused mod (its SyncBarrier's reply releases them).
                del self._makes_due[dp_id]
                out += self._release_breaks(now)
            if state.reconciled:
                # The refusal did not dump it (a deletion it had refused before): it does
                # not hold what we believed. Dump it; plain messages from now on, so a
                # deletion it keeps refusing cannot loop through bundles and dumps.
                state.no_bundles = True
                out += self.request_dumps(dp_id)
            return out
        self.counters["bundles_committed"] += 1
        return [(dp_id, BundleCommit(generation))] + [(dp_id, msg) for msg in pending.after] \
            + [(dp_id, SyncBarrier(generation))]

    @locked
    def bundle_refused(self, dp_id: int, generation: int, error: str, explained: bool, now: float) -> Out:
        """Switch ``dp_id`` answered a bundle control message (open, commit) of the bundle
        of ``generation``, or a message added to it, with an error about the bundle
        (``error``, e.g. ``OFPET_EXPERIMENTER/ONFERR_ET_FAILED``). ``explained``: a message of
        the bundle was refused (and reported), which is why its commit failed. Returns
        the dump requests."""
        state = self.switches.get(dp_id)
        label = self.switch_label(dp_id)
        if state is None:
            LOG.error("%s refused bundle %#x: %s (it has disconnected since)", label, generation, error)
            return []
        self.counters["bundles_refused"] += 1
        if explained:
            LOG.info("%s: bundle %#x not applied (%s): it refused a message of it", label, generation, error)
            return []
        if generation not in state.pending and state.no_bundles:
            return []           # reported already (its open, then each add, are refused alike)
        state.pending.pop(generation, None)
        state.no_bundles = True
        self.counters["openflow_refusals"] += 1
        LOG.error("%s refused bundle %#x itself: %s; nothing of it applied; reconciling it against its dump "
                  "and sending it plain messages from now on", label, generation, error)
        self._refusals.append(Refusal(dp_id, generation, state.confirmed,
                                      f"{label} refused the bundle of its change: {error}; nothing of it "
                                      f"applied"))
        self._confirmations.notify_all()
        return self.request_dumps(dp_id) if state.reconciled else []

    @locked
    def installed_state(self, dp_id: int) -> Entries | None:
        """A copy of what switch ``dp_id`` holds, as the core knows it (None until it is
        reconciled): taken once a change is confirmed, what ``restore`` rolls back to."""
        state = self.switches.get(dp_id)
        if state is None or not state.reconciled or state.installed is None:
            return None
        return state.installed.copy()

    @locked
    def restore(self, states: dict[int, Entries], now: float, whole: bool = False) -> Out:
        """Roll switches back to ``states`` ({dp_id: what ``installed_state`` gave}): each
        is pinned there, whatever the providers want, until ``release``. The change goes
        as any sync (one bundle per switch and step with ``controller.sync.bundles``:
        additions, then changes, then deletions after the drain); ``whole``: all steps at
        once, one bundle per switch (a single switch, or when speed matters more than make
        before break across switches). ``sync_mark`` and ``wait_confirmed`` say when it
        is in place."""
        for dp_id, entries in sorted(states.items()):
            state = self.switches.get(dp_id)
            if state is not None:
                state.pinned = entries.copy()
        self.counters["restores"] += 1
        LOG.warning("restoring %s to their previous state",
                    ", ".join(self.switch_label(dp) for dp in sorted(states)))
        return self._sync(now, force=whole)

    @locked
    def release(self, dp_ids: list[int], now: float) -> Out:
        """Unpin switches ``restore`` pinned: they go to what the providers want."""
        for dp_id in dp_ids:
            state = self.switches.get(dp_id)
            if state is not None:
                state.pinned = None
        return self._sync(now)
