"""OpenFlow 1.3 groups as data, and their translation to and from group messages.

A ``GroupSpec`` is a group a manager wants on a switch: its id (from the owner's
range, see ``cookies.group_id``), its type and its buckets. Specs are hashable and
canonical — weights only mean something in select groups and watch ports only in
fast-failover groups, so elsewhere they are stored as 0 and None — which makes a spec
read back from a switch's group-description dump (``from_stats``) compare equal to
the one that was installed. Builders make group-mods without a datapath.

    select    one bucket per packet, by a hash of its headers, weighted
    all       every bucket gets a copy (multicast, mirroring)
    indirect  exactly one bucket (a shared next hop)
    ff        fast failover: the first bucket whose watch port is live

Open vSwitch runs a bucket's actions as an OpenFlow *action set*: a pop_vlan, a
push_vlan, every set_field (in order), then the one output, group or resubmit;
anything else (a learn, a second output) is accepted, dumped back, and never run.
Specs refuse buckets that would not run as written: a bucket lists its actions in
that order (a fast-failover detour bucket: push_vlan, set_field vlan_vid, output). To learn
from the member a select group picked, a bucket sets reg6 and resubmits to a flow
that learns (table ``member``, see ``controller.pipeline``).
"""

from __future__ import annotations

from dataclasses import dataclass

from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from controller.flows import (Action, ForeignFlow, check_actions, describe_actions, group_refs, ofp_actions,
                              read_actions)
from controller.pipeline import PipelineError

GROUP_TYPES: dict[str, int] = {
    "all": ofp.OFPGT_ALL,
    "select": ofp.OFPGT_SELECT,
    "indirect": ofp.OFPGT_INDIRECT,
    "ff": ofp.OFPGT_FF,
}
_TYPE_NAMES = {code: name for name, code in GROUP_TYPES.items()}


class GroupError(PipelineError):
    """A group spec that no switch would accept (bad id, type, weight, watch port)."""


class ForeignGroup(Exception):
    """A dumped group uses something our specs never produce."""


@dataclass(frozen=True)
class Bucket:
    weight: int = 1                 # select groups only; 0 never picks the bucket
    watch_port: int | None = None   # fast-failover groups only
    actions: tuple[Action, ...] = ()

    def describe(self) -> str:
        acts = describe_actions(self.actions) or "drop"
        return f"[w={self.weight} watch={self.watch_port} {acts}]"


@dataclass(frozen=True)
class GroupSpec:
    group_id: int
    type: str
    buckets: tuple[Bucket, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.group_id, int) or not 0 <= self.group_id <= ofp.OFPG_MAX:
            raise GroupError(f"group id {self.group_id!r} out of range 0..{ofp.OFPG_MAX:#x}")
        if self.type not in GROUP_TYPES:
            raise GroupError(f"group {self.group_id:#x}: unknown type {self.type!r} "
                             f"(known: {sorted(GROUP_TYPES)})")
        buckets = tuple(self._canonical(b) for b in self.buckets)
        if self.type == "indirect" and len(buckets) != 1:
            raise GroupError(f"group {self.group_id:#x}: an indirect group has exactly one bucket, "
                             f"got {len(buckets)}")
        if self.group_id in self.groups:
            raise GroupError(f"group {self.group_id:#x}: a bucket sends to the group itself")
        object.__setattr__(self, "buckets", buckets)

    def _canonical(self, bucket: Bucket) -> Bucket:
        if not isinstance(bucket, Bucket):
            raise GroupError(f"group {self.group_id:#x}: bucket {bucket!r} is not a Bucket")
        weight, watch = bucket.weight, bucket.watch_port
        if self.type == "select":
            if not isinstance(weight, int) or not 0 <= weight <= 0xFFFF:
                raise GroupError(f"group {self.group_id:#x}: bucket weight {weight!r} out of range 0..65535")
        else:
            weight = 0
        if self.type == "ff":
            if not isinstance(watch, int) or not 0 < watch <= ofp.OFPP_MAX:
                raise GroupError(f"group {self.group_id:#x}: a fast-failover bucket needs a watch port, "
                                 f"got {watch!r}")
        else:
            watch = None
        try:
            actions = check_actions(bucket.actions)
        except PipelineError as err:
            raise GroupError(f"group {self.group_id:#x}: {err}") from None
        _check_action_set(self.group_id, actions)
        return Bucket(weight, watch, actions)

    @property
    def groups(self) -> frozenset[int]:
        """Groups the buckets chain to: they must exist before this one."""
        return frozenset().union(*(group_refs(b.actions) for b in self.buckets))

    def describe(self) -> str:
        return f"group {self.group_id:#x} {self.type} " + " ".join(b.describe() for b in self.buckets)


_TERMINAL = frozenset({"output", "controller", "in_port", "group", "resubmit"})
# The order an action set runs in (OpenFlow 1.3 5.10): pops, pushes, set_fields, then the rest.
_SET_ORDER = {"pop_vlan": 0, "push_vlan": 1, "set_field": 2}


def _check_action_set(group_id: int, actions: tuple[Action, ...]) -> None:
    """Refuse a bucket whose actions Open vSwitch would not run as written (module docstring)."""
    if any(a[0] == "learn" for a in actions):
        raise GroupError(f"group {group_id:#x}: a bucket cannot carry a learn action: Open vSwitch runs "
                         f"bucket actions as an action set and never runs the learn. Set reg6 and "
                         f"resubmit to table 'member', whose flow learns")
    ranks = [_SET_ORDER.get(a[0], 3) for a in actions]
    ends = [i for i, a in enumerate(actions) if a[0] in _TERMINAL]
    if len(ends) > 1 or (ends and ends[0] != len(actions) - 1) or ranks != sorted(ranks) \
            or ranks.count(0) > 1 or ranks.count(1) > 1:
        raise GroupError(f"group {group_id:#x}: bucket {describe_actions(actions)}: a bucket is an action "
                         f"set on Open vSwitch: at most one pop_vlan, then at most one push_vlan, then "
                         f"set_fields, then at most one output, controller, group or resubmit, last")


def _ofp_bucket(bucket: Bucket) -> parser.OFPBucket:
    watch = ofp.OFPP_ANY if bucket.watch_port is None else bucket.watch_port
    return parser.OFPBucket(weight=bucket.weight, watch_port=watch, watch_group=ofp.OFPG_ANY,
                            actions=ofp_actions(bucket.actions))


def _groupmod(spec: GroupSpec, command: int) -> parser.OFPGroupMod:
    return parser.OFPGroupMod(datapath=None, command=command, type_=GROUP_TYPES[spec.type],
                              group_id=spec.group_id, buckets=[_ofp_bucket(b) for b in spec.buckets])


def to_add(spec: GroupSpec) -> parser.OFPGroupMod:
    return _groupmod(spec, ofp.OFPGC_ADD)


def to_modify(spec: GroupSpec) -> parser.OFPGroupMod:
    """Replace type and buckets in place: flows that send to the group keep working."""
    return _groupmod(spec, ofp.OFPGC_MODIFY)


def to_delete(group_id: int) -> parser.OFPGroupMod:
    """Delete a group (a switch also deletes the flows that send to it)."""
    return parser.OFPGroupMod(datapath=None, command=ofp.OFPGC_DELETE, type_=ofp.OFPGT_ALL,
                              group_id=group_id)


def from_stats(stats: parser.OFPGroupDescStats) -> GroupSpec:
    """Read a dumped group into a GroupSpec; raise ForeignGroup if it can't be ours."""
    kind = _TYPE_NAMES.get(stats.type)
    if kind is None:
        raise ForeignGroup(f"group {stats.group_id:#x}: type {stats.type}")
    buckets = []
    for b in stats.buckets:
        if b.watch_group not in (ofp.OFPG_ANY, 0) and kind == "ff":
            raise ForeignGroup(f"group {stats.group_id:#x}: bucket watches group {b.watch_group}")
        try:
            actions = read_actions(b.actions)
        except ForeignFlow as err:
            raise ForeignGroup(f"group {stats.group_id:#x}: {err}") from None
        buckets.append(Bucket(b.weight if kind == "select" else 0,
                              b.watch_port if kind == "ff" else None, actions))
    try:
        return GroupSpec(stats.group_id, kind, tuple(buckets))
    except PipelineError as err:
        raise ForeignGroup(str(err)) from None


def desc_request() -> parser.OFPGroupDescStatsRequest:
    return parser.OFPGroupDescStatsRequest(datapath=None, flags=0)


def stats_request() -> parser.OFPGroupStatsRequest:
    """Counters of every group on the switch (bytes and packets, per bucket too)."""
    return parser.OFPGroupStatsRequest(datapath=None, flags=0, group_id=ofp.OFPG_ALL)
