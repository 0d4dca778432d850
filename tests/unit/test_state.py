"""The SQLite state store, and a controller core restarted from it: hosts, paths
and links come back, and reconnecting switches need no flow changes."""

from __future__ import annotations

import sqlite3

import pytest

from controller.core import ControllerCore
from controller.state import Snapshot, StateError, StateStore

from tests.lib import fakeoftable
from tests.lib.fakeoftable import FakeNetwork, hosts_on, ipv4_frame


def _snapshot() -> Snapshot:
    return Snapshot(
        switches={1: [{"port_no": 1, "name": "s1-eth1", "hw_addr": "0e:00:00:00:01:01", "up": True,
                       "speed_mbps": 0.0, "lldp_seen": True}], 2: []},
        links=[(1, 1, 2, 1, 100.0, "metadata")],
        hosts=[{"mac": "02:00:00:00:00:01", "dp_id": 1, "port_no": 3, "ipv4": ["10.0.0.1"],
                "last_seen": 5.0}],
        pairs={("02:00:00:00:00:01", "02:00:00:00:00:02")})


def test_snapshot_round_trips_through_the_file(tmp_path):
    path = tmp_path / "state.sqlite"
    store = StateStore(path)
    store.save(_snapshot())
    store.close()
    loaded = StateStore(path).load()
    assert loaded == _snapshot()


def test_save_replaces_everything_atomically(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    store.save(_snapshot())
    store.save(Snapshot(hosts=[{"mac": "02:00:00:00:00:09", "dp_id": 2, "port_no": 1,
                                "ipv4": [], "last_seen": 1.0}]))
    loaded = store.load()
    assert loaded.switches == {} and loaded.links == [] and loaded.pairs == set()
    assert [h["mac"] for h in loaded.hosts] == ["02:00:00:00:00:09"]


def test_a_failed_save_leaves_the_previous_state(tmp_path):
    store = StateStore(tmp_path / "s.sqlite")
    store.save(_snapshot())
    broken = _snapshot()
    broken.links.append(broken.links[0])        # duplicate primary key: the insert fails
    with pytest.raises(sqlite3.IntegrityError):
        store.save(broken)
    assert store.load() == _snapshot()


def test_unusable_paths_and_versions_are_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateError, match="cannot create its directory"):
        StateStore(blocker / "sub" / "state.sqlite")
    path = tmp_path / "old.sqlite"
    StateStore(path).db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    with pytest.raises(StateError, match="schema version 99"):
        StateStore(path)


def _network(store: StateStore) -> FakeNetwork:
    links = fakeoftable.TRIANGLE_LINKS
    net = FakeNetwork(links, hosts_on(("h1", 1, 3), ("h2", 2, 3), ("h3", 3, 3)),
                      fakeoftable.config_for(links))
    net.core = ControllerCore(net.config, store=store)
    return net


def test_restarted_core_restores_and_reconciles_without_changes(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    net = _network(store).start()
    net.announce("h1", "h2", "h3")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h2")))
    net.send("h2", ipv4_frame(net.host("h2"), net.host("h1")))
    net.run(0.5)                                    # the tick saves the state
    assert net.core.counters["state_saves"] >= 1
    tables = {dp: net.switches[dp].specs() for dp in net.switches}

    # A new core on the same file, and the same switches (their flows intact).
    restarted = ControllerCore(net.config, store=StateStore(tmp_path / "state.sqlite"))
    assert restarted.restore_state(net.now)
    net.core = restarted
    net.connected.clear()
    for dp in sorted(net.switches):
        net.connect(dp)
    assert restarted.counters["reconciliations"] == 3
    assert restarted.counters["flow_adds"] == 0 and restarted.counters["flow_deletes"] == 0
    assert {dp: net.switches[dp].specs() for dp in net.switches} == tables
    assert net.trace("h1", "h2") == [1, 2]
    assert {h.mac for h in restarted.hosts_list()} == {net.host(n).mac for n in ("h1", "h2", "h3")}


def test_restored_links_of_a_switch_that_never_returns_expire_after_the_hold(tmp_path):
    store = StateStore(tmp_path / "state.sqlite")
    net = _network(store).start()
    net.run(0.5)
    restarted = ControllerCore(net.config, store=StateStore(tmp_path / "state.sqlite"))
    restarted.restore_state(net.now)
    hold = net.config.controller.discovery.restart_hold_s
    assert restarted.topology.graph.number_of_edges() == 6
    restarted.tick(net.now + hold / 2)
    assert restarted.topology.graph.number_of_edges() == 6
    restarted.tick(net.now + hold + 1)
    assert restarted.topology.graph.number_of_edges() == 0
    assert restarted.topology.switches == {}


def test_controller_refuses_to_start_on_an_unusable_state_file(tmp_path, capsys):
    from controller import cli
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    config = tmp_path / "c.yaml"
    config.write_text(f"controller:\n  state: {{path: {blocker}/sub/state.sqlite}}\n")
    assert cli.main(["run", str(config)]) == 1
    assert "cannot create its directory" in capsys.readouterr().err


@pytest.mark.parametrize("stored, message", [
    ("3", r"written by a newer version \(schema version 3\); this version reads schema 2"),
    ("1", r"schema version 1 has no migration to 2"),
    ("two", r"schema version 'two' is not a number"),
])
def test_every_store_refuses_a_file_of_another_schema_version_the_same_way(tmp_path, stored, message):
    """One policy for the controller's, the slices' and the stitching state files."""
    import sqlite3

    from controller.state import open_sqlite
    path = str(tmp_path / "x.sqlite")
    schema = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
    open_sqlite(path, schema, "test file", StateError, 2).close()
    assert sqlite3.connect(path).execute("SELECT value FROM meta").fetchone() == ("2",)
    open_sqlite(path, schema, "test file", StateError, 2).close()          # its own version opens
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value=? WHERE key='schema_version'", (stored,))
    db.commit()
    db.close()
    with pytest.raises(StateError, match=f"test file {path}: {message}"):
        open_sqlite(path, schema, "test file", StateError, 2)
