"""The operator CLI (``foresight``) against a real gRPC server over a fake network:
what an operator reads, and the exit code and message when they ask for nonsense."""

import pytest

from controller import operator_cli
from controller.api import create_server

from tests.lib.fakeoftable import diamond, ipv4_frame


@pytest.fixture
def address():
    net = diamond({(1, 2): 1000.0, (2, 4): 1000.0, (1, 3): 9920.0, (3, 4): 2480.0})
    net.announce("h1", "h4")
    net.send("h1", ipv4_frame(net.host("h1"), net.host("h4")))
    server, port, servicer = create_server(net.core, "127.0.0.1:0", max_workers=2)
    server.start()
    yield f"127.0.0.1:{port}"
    servicer.stopping = True
    server.stop(grace=None).wait(5)


def _run(capsys, *argv):
    code = operator_cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_topology_lists_switches_and_directed_links(address, capsys):
    code, out, _ = _run(capsys, "--controller", address, "topology")
    assert code == 0
    assert out.splitlines()[0] == "4 switches, 8 directed links"
    assert "1:1-2:1" in out and "1000.00 Mb" in out


def test_path_and_hosts(address, capsys):
    code, out, _ = _run(capsys, "--controller", address, "path", "10.0.0.1", "10.0.0.2")
    assert code == 0
    assert out.startswith("10.0.0.1 -> 10.0.0.2: s1[3>1] -> s2[1>2] -> s4[1>3]")
    assert "installed=True" in out
    code, out, _ = _run(capsys, "--controller", address, "hosts")
    assert code == 0 and out.strip().endswith("2 hosts")


def test_unknown_host_gives_exit_1_and_names_it(address, capsys):
    code, out, err = _run(capsys, "--controller", address, "path", "10.9.9.9", "10.0.0.1")
    assert code == 1
    assert "NOT_FOUND" in err and "10.9.9.9" in err


def test_unreachable_controller_is_reported(capsys):
    code, _, err = _run(capsys, "--controller", "127.0.0.1:1", "status")
    assert code == 1 and "UNAVAILABLE" in err


def test_only_northbound_commands_and_room_for_more(capsys):
    ap, sub = operator_cli.build_parser()
    assert sorted(sub.choices) == ["hosts", "path", "status", "topology", "watch"]
    sub.add_parser("extra").set_defaults(func=lambda args: 7)
    assert operator_cli.run(ap.parse_args(["extra"])) == 7
    with pytest.raises(SystemExit):
        operator_cli.main(["lab", "list"])
    assert "invalid choice: 'lab'" in capsys.readouterr().err
