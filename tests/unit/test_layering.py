"""The arrow points down: labs import topologies, the controller and the apps; nothing
below imports a lab, the controller names no app, and topologies import nothing of
ours but topologies. Checked on the source (every import, also inside functions) and,
for the modules others rely on being light, in a fresh interpreter."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("apps", "controller", "labs", "predictors", "proto", "topologies", "tests")


def _imports(package: str) -> dict[str, set[str]]:
    """Top-level packages of ours each module of ``package`` imports."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        out[str(path.relative_to(ROOT))] = names & set(OURS)
    return out


@pytest.mark.parametrize("package", ["apps", "controller", "predictors", "proto", "topologies"])
def test_nothing_below_the_labs_imports_them(package):
    assert {m: n for m, n in _imports(package).items() if "labs" in n} == {}


def test_the_controller_names_no_app():
    assert {m: n for m, n in _imports("controller").items() if "apps" in n} == {}


def test_topologies_import_nothing_of_ours_but_topologies():
    assert {m: n for m, n in _imports("topologies").items() if n - {"topologies"}} == {}


def _loaded(module: str) -> set[str]:
    """Modules of ours (and Mininet's) a fresh interpreter has after importing ``module``."""
    code = (f"import sys, {module}; print(' '.join(m for m in sys.modules "
            f"if m.split('.')[0] in {OURS + ('mininet',)!r}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_catalogue_stands_alone():
    assert _loaded("topologies.catalog") == {"topologies", "topologies.catalog"}


def test_the_te_plan_needs_no_mininet_and_no_lab_processes():
    loaded = _loaded("labs.te_plan")
    assert "labs.te_plan" in loaded
    assert not {m for m in loaded if m.startswith("mininet")} | (loaded & {"labs.lab", "labs.te_lab"})
