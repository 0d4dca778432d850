"""Tables in docs/ that describe code, generated from the code.

    python scripts/gen_docs.py           rewrite them in place
    python scripts/gen_docs.py --check   exit 1 (naming the block) if a page differs

A block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``:
``tables`` (the pipeline: ``controller.pipeline.PIPELINE`` with every app of the
repository registered) and ``owners`` (``controller.cookies`` and the apps'
registrations: codes, id ranges, bands in shared tables). tests/unit/test_docs.py
runs the check.
"""

from __future__ import annotations

import argparse
import pkgutil
import re
import sys
from importlib import import_module
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAGES = {"tables": "docs/pipeline.md", "owners": "docs/pipeline.md"}


def _register_apps() -> None:
    import apps
    for info in pkgutil.iter_modules(apps.__path__):
        if info.ispkg:
            import_module(f"apps.{info.name}")


def tables() -> str:
    from controller.pipeline import PIPELINE
    rows = ["| id | table | owner | match fields | next | miss | what |", "|---|---|---|---|---|---|---|"]
    for t in PIPELINE.tables:
        owner = "controller" + (" (shared)" if t.shared else "") if t.owner == "pipeline" else t.owner
        extra = " Resubmit target." if t.resubmit_target else ""
        rows.append(f"| {t.table_id} | `{t.name}` | {owner} | {', '.join(sorted(t.match_fields))} | "
                    f"{', '.join(t.next_tables) or '—'} | {t.miss.replace(':', ' ')} | "
                    f"{t.description}.{extra} |")
    return "\n".join(rows)


def owners() -> str:
    from controller import cookies
    from controller.pipeline import PIPELINE
    rows = ["| owner | cookie | group/meter ids | bands in shared tables | what |", "|---|---|---|---|---|"]
    for name, high in sorted(cookies.OWNERS.items(), key=lambda kv: kv[1]):
        ids = f"`{cookies.ID_OWNERS[name]:#04x}`" if name in cookies.ID_OWNERS else "—"
        bands = "; ".join(f"{b.table} {b.low}..{b.high}" for (_, o), b in sorted(PIPELINE.bands.items())
                          if o == name) or "—"
        rows.append(f"| {name} | `{high:#06x}` | {ids} | {bands} | {cookies.NOTES.get(name, '')} |")
    return "\n".join(rows)


BLOCKS = {"tables": tables, "owners": owners}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- generated:{name} -->\n).*?(\n<!-- /generated:{name} -->)", re.S)
        if not pattern.search(text):
            continue
        body = make()
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a page is stale")
    args = parser.parse_args(argv)
    _register_apps()
    stale = []
    for page in sorted(set(PAGES.values())):
        path = ROOT / page
        old = path.read_text(encoding="utf-8")
        new = render(old)
        if new != old:
            stale.append(page)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    if args.check and stale:
        print(f"stale generated tables in {', '.join(stale)}: run python scripts/gen_docs.py",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
