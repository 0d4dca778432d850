"""The tables in docs/ that describe code (pipeline tables, owners) are generated from
the code (scripts/gen_docs.py); this fails when a page and the code disagree."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_tables_in_docs_match_the_code():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200
    first = next(i for i, line in enumerate(lines) if "make demo" in line)
    assert first < 40 and any("make test" in line for line in lines[:60])
