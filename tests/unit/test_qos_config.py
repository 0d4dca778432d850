"""The ``qos`` config section: what loads, and that every refusal names the bad key."""

import textwrap

import pytest

from controller import config
from controller.config import ConfigError

GOOD = textwrap.dedent("""\
    controller:
      providers: [apps.qos.app:provider]
    qos:
      burst_s: 0.05
      classes:
        - {name: best-effort, dscp: [0], rank: 2, rate_mbps: 6, default: true}
        - {name: ef, dscp: [46], rank: 0}
        - {name: af4, dscp: [34, 36, 38], rank: 1, rate_mbps: 20.5}
""")


def _error(text: str) -> str:
    with pytest.raises(ConfigError) as err:
        config.parse(text, "lab.yaml")
    return str(err.value)


def _classes(*items: str) -> str:
    return "qos:\n  classes:\n" + "".join(f"    - {item}\n" for item in items)


def test_classes_load_with_their_values():
    qos = config.parse(GOOD).qos
    assert [c.name for c in qos.classes] == ["best-effort", "ef", "af4"]
    assert qos.classes[1].rate_mbps is None             # unmetered
    assert qos.classes[2].dscp == (34, 36, 38)
    assert qos.classes[0].default and not qos.classes[1].default
    assert qos.burst_s == 0.05


def test_no_section_means_no_classes():
    assert config.parse("").qos.classes == ()


def test_dump_then_parse_gives_the_same_config():
    cfg = config.parse(GOOD)
    assert config.parse(config.dump(cfg)) == cfg


def test_the_example_config_documents_qos():
    from pathlib import Path
    example = Path(config.__file__).with_name("config.example.yaml")
    text = example.read_text()
    assert "apps.qos.app:provider" in text
    assert config.parse(text).qos.classes == ()


@pytest.mark.parametrize("items, key, says", [
    (["{name: ef, dscp: [46], rank: 0}", "{name: ef, dscp: [0], rank: 1}"],
     "qos.classes.1.name", "duplicate class name 'ef' (also classes.0)"),
    (["{name: ef, dscp: [46], rank: 0}", "{name: be, dscp: [0, 46], rank: 1}"],
     "qos.classes.1.dscp.1", "DSCP 46 is already in class 'ef' (classes.0)"),
    (["{name: ef, dscp: [46, 46], rank: 0}"], "qos.classes.0.dscp.1", "DSCP 46 is listed twice"),
    (["{name: ef, dscp: [64], rank: 0}"], "qos.classes.0.dscp.0", "less than or equal to 63"),
    (["{name: ef, dscp: [-1], rank: 0}"], "qos.classes.0.dscp.0", "greater than or equal to 0"),
    (["{name: be, dscp: [0], rank: 1, rate_mbps: 0}"], "qos.classes.0.rate_mbps", "greater than 0"),
    (["{name: be, dscp: [0], rank: 1, rate_mbps: -5}"], "qos.classes.0.rate_mbps", "greater than 0"),
    (["{name: be, rank: 1}"], "qos.classes.0.dscp", "needs at least one DSCP value"),
    (["{name: a, rank: 1, default: true}", "{name: b, rank: 2, default: true}"],
     "qos.classes.1.default", "only one class may be the default; classes.0 already is"),
    (["{name: ef, dscp: [46], rank: 100}"], "qos.classes.0.rank", "less than or equal to 99"),
    (["{name: ef, dscp: [46]}"], "qos.classes.0.rank", "Field required"),
    (["{name: 'Bad Name', dscp: [46], rank: 0}"], "qos.classes.0.name", "should match pattern"),
    (["{name: ef, dscp: [46], rank: 0, prio: 3}"], "qos.classes.0.prio", "unknown key"),
    (["{name: ef, dscp: 46, rank: 0}"], "qos.classes.0.dscp", "valid tuple"),
])
def test_a_bad_class_is_refused_naming_its_key(items, key, says):
    message = _error(_classes(*items))
    assert f"lab.yaml: {key}: " in message
    assert says in message


def test_a_bad_section_key_is_named():
    assert "qos.burst_s: Input should be greater than 0" in _error("qos: {burst_s: 0}\n")
    assert "qos.clases: unknown key" in _error("qos: {clases: []}\n")
