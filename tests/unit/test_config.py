"""Tests for controller.config and the ``foresight-controller check`` command:
what loads, what is refused, and that every refusal names the offending key."""

import textwrap

import pydantic
import pytest

from controller import cli, config
from controller.config import ConfigError

GOOD = textwrap.dedent("""\
    controller:
      openflow: {listen_host: 0.0.0.0, port: 6653}
      grpc: {listen_host: 127.0.0.1, port: 50051}
      metrics: {listen_host: 127.0.0.1, port: 9302}
      discovery: {lldp_interval_s: 1.0, link_timeout_s: 3.5}
      telemetry: {poll_interval_s: 2.0}
      routing: {path_metric: inverse_capacity}
    topology:
      switches: [{dp_id: 1, name: ATLAng}, {dp_id: 2, name: HSTNng}]
      links: [{a: 1, b: 2, capacity_mbps: 9920}]
""")


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        config.parse(text, "lab.yaml")
    return str(err.value)


def test_valid_config_loads_with_its_values(tmp_path):
    path = tmp_path / "lab.yaml"
    path.write_text(GOOD)
    cfg = config.load(path)
    assert cfg.controller.routing.path_metric == "inverse_capacity"
    assert cfg.controller.grpc.port == 50051
    assert cfg.topology.name_of(2) == "HSTNng"
    assert cfg.topology.capacity_mbps(2, 1) == 9920.0
    assert cfg.topology.capacity_mbps(1, 3) is None


def test_loaded_config_is_immutable():
    cfg = config.parse(GOOD)
    with pytest.raises(pydantic.ValidationError):
        cfg.controller.grpc.port = 1


def test_dump_then_parse_gives_the_same_config():
    cfg = config.parse(GOOD)
    assert config.parse(config.dump(cfg)) == cfg


@pytest.mark.parametrize("text, key", [
    ("controller:\n  grpcc: {port: 1}\n", "controller.grpcc"),
    ("controller:\n  grpc: {port: 1, hots: 1.2.3.4}\n", "controller.grpc.hots"),
    ("topology:\n  switches: [{dp_id: 1, name: a, colour: red}]\n", "topology.switches.0.colour"),
    ("colour: red\n", "colour"),
])
def test_unknown_key_is_rejected_naming_the_dotted_key(text, key):
    message = _error(text)
    assert f"{key}: unknown key" in message
    assert message.startswith("lab.yaml: ")


@pytest.mark.parametrize("text, key", [
    ("controller:\n  grpc: {port: fifty}\n", "controller.grpc.port"),
    ("controller:\n  discovery: {lldp_interval_s: fast}\n", "controller.discovery.lldp_interval_s"),
    ("controller:\n  routing: {path_metric: widest}\n", "controller.routing.path_metric"),
    ("controller:\n  routing: {drain_s: 5}\n", "controller.routing.drain_s"),
    ("controller:\n  openflow: {listen_host: localhost}\n", "controller.openflow.listen_host"),
    ("controller:\n  grpc: {port: 70000}\n", "controller.grpc.port"),
    ("topology:\n  links: [{a: 1, b: 2, capacity_mbps: 0}]\n", "topology.links.0.capacity_mbps"),
    ("controller:\n  providers: [apps.slices]\n", "controller.providers"),
    ("controller:\n  providers: [a:b, a:b]\n", "controller.providers"),
])
def test_wrong_type_or_value_names_the_key(text, key):
    assert f"{key}: " in _error(text)


def test_duplicate_yaml_key_is_rejected_with_its_line():
    text = "controller:\n  grpc: {port: 1}\n  grpc: {port: 2}\n"
    message = _error(text)
    assert "duplicate key 'grpc'" in message
    assert "line 3" in message


def test_duplicate_key_in_a_nested_flow_mapping_is_rejected():
    assert "duplicate key 'port'" in _error("controller:\n  grpc: {port: 1, port: 2}\n")


@pytest.mark.parametrize("timeout", [1.0, 0.5])
def test_link_timeout_not_above_lldp_interval_is_rejected(timeout):
    text = f"controller:\n  discovery: {{lldp_interval_s: 1.0, link_timeout_s: {timeout}}}\n"
    message = _error(text)
    assert "controller.discovery" in message
    assert "link_timeout_s must be greater than lldp_interval_s" in message


def test_duplicate_dp_id_in_topology_switches_is_rejected():
    message = _error("topology:\n  switches: [{dp_id: 1, name: a}, {dp_id: 1, name: b}]\n")
    assert "switches.1.dp_id: duplicate dp_id 1" in message


def test_duplicate_switch_name_is_rejected():
    assert "duplicate name 'a'" in _error(
        "topology:\n  switches: [{dp_id: 1, name: a}, {dp_id: 2, name: a}]\n")


def test_link_from_a_switch_to_itself_is_rejected():
    message = _error("topology:\n  links: [{a: 2, b: 2, capacity_mbps: 10}]\n")
    assert "links.0: a and b are the same switch 2" in message


def test_same_link_twice_in_either_direction_is_rejected():
    message = _error("topology:\n  links: [{a: 1, b: 2, capacity_mbps: 10},\n"
                     "          {a: 2, b: 1, capacity_mbps: 10}]\n")
    assert "links.1: duplicate link between 1 and 2" in message


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "---\n"])
def test_empty_file_gives_defaults(text):
    cfg = config.parse(text)
    assert cfg == config.model()() and cfg.section("te") == cfg.te
    assert cfg.controller.openflow.port == 6653
    assert cfg.controller.routing.path_metric == "hops"


@pytest.mark.parametrize("text, kind", [("- a\n- b\n", "list"), ("just words\n", "str"), ("42\n", "int")])
def test_non_mapping_top_level_is_rejected(text, kind):
    assert f"top level must be a mapping, got {kind}" in _error(text)


def test_invalid_yaml_is_a_config_error():
    assert "invalid YAML" in _error("controller: [unclosed\n")


def test_unsafe_yaml_tags_are_refused():
    assert "invalid YAML" in _error("controller: !!python/object/apply:os.system ['true']\n")


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.yaml")


def test_check_command_accepts_a_good_file(tmp_path, capsys):
    path = tmp_path / "good.yaml"
    path.write_text(GOOD)
    assert cli.main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"ok: {path}")
    assert "2 switches and 1 links" in out
    assert err == ""


def test_check_command_rejects_a_bad_file_naming_the_key(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("controller:\n  grpcc: {port: 1}\n")
    assert cli.main(["check", str(path)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "controller.grpcc: unknown key" in err
    assert str(path) in err


def test_providers_are_module_factory_paths_that_import():
    cfg = config.parse("controller:\n  providers: [apps.slices.app:provider, apps.te.app:provider]\n")
    assert cfg.controller.providers == ("apps.slices.app:provider", "apps.te.app:provider")
    assert config.parse(config.dump(cfg)) == cfg
    with pytest.raises(config.ConfigError, match=r"controller.providers.1: cannot import tests.x: No module"):
        config.parse("controller:\n  providers: [apps.slices.app:provider, tests.x:y]\n")


def test_a_section_of_an_app_that_is_switched_off_is_still_checked_by_its_schema():
    """A fresh controller process (no app imported yet) finds the app owning a section
    through the ``foresight.apps`` entry points, even when controller.providers does
    not list it (the TE lab's TE-off run keeps its te section)."""
    import subprocess
    import sys
    code = ("from controller import config\n"
            "print(config.parse('te: {interval_s: 2}').section('te').interval_s)\n"
            "try:\n"
            "    config.parse('te: {interval: 2}', source='c.yaml')\n"
            "except config.ConfigError as err:\n"
            "    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2.0", "c.yaml: te.interval: unknown key"]
