"""The OpenFlow 1.3 table pipeline, declared as data.

Every flow the controller installs names its table by name; the table says which
match fields it accepts, which tables it may jump to and what happens on a miss.
A flow that matches an undeclared field or jumps to an undeclared table raises
``PipelineError`` before anything reaches a switch.

The controller declares its own tables (``CORE_TABLES``):

    0 ingress   LLDP and ARP to the controller; frames on a fast-failover detour (VLAN
                tagged) straight to forward; everything else to classify
    1 classify  per-packet classification by apps (addresses, ports, DSCP: rate limits
                with meters, marking, redirection to an app's table); miss to forward
    2 forward   per (eth_src, eth_dst) paths, detours per (eth_dst, vlan_vid), and what
                apps place in front of them; multicast to flood; miss to controller
    3 flood     spanning-tree broadcast: blocked ports drop, others output

``ingress``, ``classify`` and ``forward`` are *shared*: apps put flows there, each in
the priority band it registered for that table (``Pipeline.add_band``);
``controller.desired.merge`` refuses an app's flow outside its band whose match
overlaps another owner's flow in the same table, naming both owners. An app may also
register tables of its own (``Pipeline.add_table``), with the shared tables that may
jump to them; only their owner puts flows there. Apps register when their package
is imported (``controller.appbase.register``), so this module names no app; the
generated table in ``docs/pipeline.md`` lists what the registered apps add.

Resubmit targets: Open vSwitch runs a group bucket's actions as an OpenFlow *action
set* (set_fields, then one output, group or resubmit), so a learn action in a bucket
is accepted, dumped back, and silently never runs. A learn only runs in a flow's
action list; a bucket that must learn therefore marks what it picked in a register
and resubmits to a table declared ``resubmit_target``, the only tables a resubmit may
enter; their flows may not resubmit again (no loops).

Registers (Open vSwitch scratch fields, zero when a packet enters the switch) are
given out to apps the same way as tables (``Table.match_fields`` naming ``reg<n>``);
reg7 is the controller's: ``flows`` writes it just before a learn action, which reads
its output port from it (learn has no immediate output).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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
    owner: str = "pipeline"         # who puts flows here ("pipeline": the controller's own table)
    shared: bool = False            # apps may put flows here, each in its registered band


CORE_TABLES: tuple[Table, ...] = (
    Table("ingress", 0, frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "vlan_vid"}),
          next_tables=("classify", "forward"), miss="goto:classify", shared=True,
          description="classify: control protocols to the controller; detour-tagged frames to forward"),
    Table("classify", 1, frozenset({"in_port", "eth_type", "eth_src", "eth_dst", "ipv4_src", "ipv4_dst",
                                    "ip_proto", "ip_dscp", "tcp_src", "tcp_dst", "udp_src", "udp_dst"}),
          next_tables=("forward",), miss="goto:forward", shared=True,
          description="apps classify packets: addresses, ports, DSCP; rate limits with meters, marking"),
    Table("forward", 2, frozenset({"in_port", "eth_src", "eth_dst", "eth_type", "vlan_vid", "ip_proto",
                                   "tcp_src", "udp_src"}),
          next_tables=("flood",), miss="controller", shared=True,
          description="unicast paths between learned hosts, and their fast-failover detours"),
    Table("flood", 3, frozenset({"in_port", "eth_dst"}),
          miss="drop", description="loop-free broadcast along the spanning tree"),
)
CORE_TABLE_NAMES = frozenset(t.name for t in CORE_TABLES)
MAX_TABLE_ID = 254      # OFPTT_MAX


@dataclass(frozen=True)
class Band:
    """The priorities ``owner`` uses in shared table ``table``: ``low`` .. ``high``."""

    table: str
    owner: str
    low: int
    high: int

    def __contains__(self, priority: int) -> bool:
        return self.low <= priority <= self.high

    def describe(self) -> str:
        return f"{self.owner} {self.low}..{self.high}"


class Pipeline:
    """Look-ups and checks over the declared tables."""

    def __init__(self, tables: tuple[Table, ...] = CORE_TABLES):
        self._check(tables)
        self.tables = tables
        self._by_name = {t.name: t for t in tables}
        self._by_id = {t.table_id: t for t in tables}
        self.bands: dict[tuple[str, str], Band] = {}     # (table, owner) -> band

    @staticmethod
    def _check(tables: tuple[Table, ...]) -> None:
        by_name = {t.name: t for t in tables}
        ids = [t.table_id for t in tables]
        if len(set(ids)) != len(ids) or len(by_name) != len(tables):
            raise PipelineError("duplicate table id or name in pipeline declaration")
        for table in tables:
            if not 0 <= table.table_id <= MAX_TABLE_ID:
                raise PipelineError(f"table {table.name}: id {table.table_id} outside 0..{MAX_TABLE_ID}")
            for nxt in table.next_tables:
                if nxt not in by_name:
                    raise PipelineError(f"table {table.name}: next table {nxt!r} is not declared")
                if by_name[nxt].table_id <= table.table_id:
                    raise PipelineError(f"table {table.name}: goto {nxt!r} must go forward")

    # ---- registration (controller.appbase) ----------------------------------------------

    def add_table(self, table: Table, entered_from: tuple[str, ...] = ()) -> None:
        """Declare an app's own table; the shared tables in ``entered_from`` may jump to it.
        Declaring the same table again is a no-op; PipelineError names any clash."""
        held = self._by_name.get(table.name)
        if held is not None:
            if held == table and all(table.name in self._by_name[t].next_tables for t in entered_from):
                return
            raise PipelineError(f"table {table.name!r} is already declared by {held.owner}")
        if table.table_id in self._by_id:
            other = self._by_id[table.table_id]
            raise PipelineError(f"table {table.name!r}: id {table.table_id} is already {other.name!r} "
                                f"({other.owner})")
        if table.shared:
            raise PipelineError(f"table {table.name!r}: only the controller's tables are shared")
        tables = list(self.tables)
        for name in entered_from:
            source = self.table(name)
            if not source.shared:
                raise PipelineError(f"table {table.name!r}: entered from {name!r}, "
                                    f"which is not a shared table")
            tables[tables.index(source)] = replace(source, next_tables=source.next_tables + (table.name,))
        tables.append(table)
        tables.sort(key=lambda t: t.table_id)
        self._check(tuple(tables))
        self.tables = tuple(tables)
        self._by_name = {t.name: t for t in self.tables}
        self._by_id = {t.table_id: t for t in self.tables}

    def add_band(self, band: Band) -> None:
        """Give ``band.owner`` the priorities ``low..high`` in a shared table."""
        table = self.table(band.table)
        if not table.shared:
            raise PipelineError(f"band {band.describe()} in {band.table!r}: not a shared table "
                                f"(shared: {sorted(t.name for t in self.tables if t.shared)})")
        if not 0 < band.low <= band.high <= 0xFFFF:
            raise PipelineError(f"band {band.describe()} in {band.table!r}: need 0 < low <= high <= 65535")
        held = self.bands.get((band.table, band.owner))
        if held is not None and held != band:
            raise PipelineError(f"{band.owner} already has band {held.low}..{held.high} in {band.table!r}")
        self.bands[(band.table, band.owner)] = band

    def remove_owner(self, owner: str) -> None:
        """Forget an owner's tables and bands (tests that register an app clean up with this)."""
        mine = {t.name for t in self.tables if t.owner == owner and t.name not in CORE_TABLE_NAMES}
        self.tables = tuple(replace(t, next_tables=tuple(n for n in t.next_tables if n not in mine))
                            for t in self.tables if t.name not in mine)
        self._by_name = {t.name: t for t in self.tables}
        self._by_id = {t.table_id: t for t in self.tables}
        self.bands = {k: b for k, b in self.bands.items() if b.owner != owner}

    def band(self, table: str, owner: str) -> Band | None:
        return self.bands.get((table, owner))

    def bands_in(self, table: str) -> list[Band]:
        return sorted((b for (t, _), b in self.bands.items() if t == table), key=lambda b: (-b.high, b.owner))

    def owned_by(self, owner: str) -> tuple[Table, ...]:
        return tuple(t for t in self.tables if t.owner == owner)

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
        return self._by_id.get(table_id)

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
