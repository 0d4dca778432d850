"""The OpenFlow 1.3 table pipeline, declared as data.

Every flow the controller installs names its table by name; the table says which
match fields it accepts, which tables it may jump to and what happens on a miss.
A flow that matches an undeclared field or jumps to an undeclared table raises
``PipelineError`` before anything reaches a switch.

    0 ingress   LLDP and ARP to the controller; frames on a fast-failover detour (VLAN
                tagged) straight to forward; everything else to slice
    1 slice     per-slice classification (VIPs, rate limits); VIP traffic to lb; miss to forward
                QoS classes (DSCP from host ports, ingress meters) below the slices' rules
    2 forward   per (eth_src, eth_dst) paths, detours per (eth_dst, vlan_vid), traffic-engineered
                splits per (pair, source-port slot) and routes per label; multicast to
                flood; miss to controller
    3 flood     spanning-tree broadcast: blocked ports drop, others output
    4 lb        VIP load balancing: learned pins (one per connection) take a connection
                to the member it got first; below them VIP -> select group; miss drops
    5 member    reached by resubmit from a select bucket that put the member's key in
                reg6: pin the connection (NX learn into lb), rewrite to the member, output
    6 stitch    site switches (apps.stitching): ingress puts a host port's virtual network
                in reg5 and sends host and tunnel ports here; L2 within each virtual
                network, stitched traffic into and out of tunnels; miss drops (deny by default)

Why ``member`` exists: Open vSwitch runs a group bucket's actions as an OpenFlow
*action set* (set_fields, then one output, group or resubmit), so a learn action in a
bucket is accepted, dumped back, and silently never runs. A learn only runs in a
flow's action list; a bucket therefore marks its member in a register and resubmits
to this table. ``resubmit_target`` tables are the only ones a resubmit may enter, and
their flows may not resubmit again (no loops).

Registers (Open vSwitch scratch fields, zero when a packet enters the switch): reg5
carries the virtual network of a site's host port; reg6 the member a select bucket picked; reg7 is written by ``flows`` just before a
learn action, which reads its output port from it (learn has no immediate output).
"""

from __future__ import annotations

from dataclasses import dataclass


class PipelineError(ValueError):
    """A flow does not fit the declared pipeline."""


@dataclass(frozen=True)
class Table:
    name: str
    table_id: int
    match_fields: frozenset[str]
    next_tables: tuple[str, ...] = ()
    miss: str = "drop"          # 'drop' | 'controller' | 'goto:<table>'
    description: str = ""
    resubmit_target: bool = False   # group buckets may resubmit here (see the module docstring)


TABLES: tuple[Table, ...] = (
    Table("ingress", 0, frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "vlan_vid"}),
          next_tables=("slice", "forward", "stitch"), miss="goto:slice",
          description="classify: control protocols to the controller; detour-tagged frames to forward"),
    Table("slice", 1, frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "ipv4_src", "ipv4_dst",
                                 "ip_proto", "ip_dscp", "tcp_src", "tcp_dst", "udp_src", "udp_dst"}),
          next_tables=("forward", "lb"), miss="goto:forward",
          description="slices: VIP classification, rate limits with meters, marking; QoS classes by DSCP"),
    Table("forward", 2, frozenset({"in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", "ip_proto",
                                   "tcp_src", "udp_src"}),
          next_tables=("flood",), miss="controller",
          description="unicast paths between learned hosts, and their fast-failover detours"),
    Table("flood", 3, frozenset({"in_port", "eth_dst"}),
          miss="drop", description="loop-free broadcast along the spanning tree"),
    Table("lb", 4, frozenset({"eth_type", "ip_proto", "ipv4_src", "ipv4_dst", "tcp_src", "tcp_dst",
                              "udp_src", "udp_dst"}),
          miss="drop", description="VIP load balancing: connection pins, then select groups"),
    Table("member", 5, frozenset({"eth_type", "ip_proto", "ipv4_dst", "reg6"}),
          miss="drop", resubmit_target=True,
          description="the member a select bucket picked: pin the connection, rewrite, output"),
    Table("stitch", 6, frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "arp_tpa", "tunnel_id", "reg5"}),
          miss="drop",
          description="site switches: L2 within a virtual network (reg5), stitches over tunnels; "
                      "anything else is not allowed"),
)


class Pipeline:
    """Look-ups and checks over the declared tables."""

    def __init__(self, tables: tuple[Table, ...] = TABLES):
        self.tables = tables
        self._by_name = {t.name: t for t in tables}
        ids = [t.table_id for t in tables]
        if len(set(ids)) != len(ids) or len(self._by_name) != len(tables):
            raise PipelineError("duplicate table id or name in pipeline declaration")
        for table in tables:
            for nxt in table.next_tables:
                if nxt not in self._by_name:
                    raise PipelineError(f"table {table.name}: next table {nxt!r} is not declared")
                if self._by_name[nxt].table_id <= table.table_id:
                    raise PipelineError(f"table {table.name}: goto {nxt!r} must go forward")

    def table(self, name: str) -> Table:
        try:
            return self._by_name[name]
        except KeyError:
            raise PipelineError(f"unknown table {name!r}; declared: {sorted(self._by_name)}") from None

    def resubmit_target(self, name: str) -> Table:
        """The table a resubmit action enters; PipelineError unless it is declared as one."""
        table = self.table(name)
        if not table.resubmit_target:
            targets = sorted(t.name for t in self.tables if t.resubmit_target)
            raise PipelineError(f"resubmit to table {name!r} not allowed (resubmit targets: {targets})")
        return table

    def table_by_id(self, table_id: int) -> Table | None:
        for table in self.tables:
            if table.table_id == table_id:
                return table
        return None

    def check(self, table_name: str, match_fields: set[str] | frozenset[str], goto: str | None) -> Table:
        table = self.table(table_name)
        extra = set(match_fields) - table.match_fields
        if extra:
            raise PipelineError(
                f"table {table.name}: match field(s) {sorted(extra)} not declared "
                f"(allowed: {sorted(table.match_fields)})")
        if goto is not None and goto not in table.next_tables:
            raise PipelineError(f"table {table.name}: goto {goto!r} not allowed "
                                f"(allowed: {list(table.next_tables)})")
        return table


PIPELINE = Pipeline()
