"""Generate the Python gRPC stubs for every .proto in this folder, and for GoBGP's API.

Run from anywhere: ``python -m proto.generate``. ``--check`` exits non-zero
when the committed stubs differ from what the .proto files produce (a test runs it).

GoBGP's stubs (``proto/gobgp/``) come from the .proto files of the Debian package
``golang-github-osrg-gobgp-dev`` (GoBGP 3.10; the stubs on PyPI target GoBGP 2). Those
files import each other as ``"gobgp.proto"``; they are copied into a temporary tree laid
out as ``proto/gobgp/*.proto`` with the imports rewritten to ``"proto/gobgp/x.proto"``,
so the generated modules import each other as ``proto.gobgp.x_pb2``. When the Debian
files are absent the GoBGP part is skipped with a note (the committed stubs stay).
"""

from __future__ import annotations

import argparse
import filecmp
import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parent
GOBGP_API = Path("/usr/share/gocode/src/github.com/osrg/gobgp/api")
GOBGP_PACKAGE = "gobgp"
GOBGP_INIT = ('"""Generated gRPC stubs for the GoBGP 3.10 API (``python -m proto.generate``; '
              'do not edit).\n\nSource: the Debian package golang-github-osrg-gobgp-dev, '
              f'{GOBGP_API}."""\n')
_IMPORT = re.compile(r'^import "([A-Za-z0-9_]+\.proto)";', re.MULTILINE)


def _protoc(include_root: Path, protos: list[Path], out_dir: Path) -> None:
    include = Path(protoc.__file__).parent / "_proto"
    for proto in protos:
        args = ["protoc", f"-I{include_root}", f"-I{include}", f"--python_out={out_dir}",
                f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}",
                str(proto.relative_to(include_root))]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")


def generate(out_dir: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.glob("*.proto"))
    _protoc(ROOT, protos, out_dir)
    return protos


def generate_gobgp(out_dir: Path, api_dir: Path = GOBGP_API) -> list[Path]:
    """Stubs for GoBGP's API into ``out_dir/proto/gobgp``; [] when the .proto files are absent."""
    sources = sorted(api_dir.glob("*.proto"))
    if not sources:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "proto" / GOBGP_PACKAGE
        tree.mkdir(parents=True)
        for src in sources:
            text = _IMPORT.sub(lambda m: f'import "proto/{GOBGP_PACKAGE}/{m.group(1)}";', src.read_text())
            (tree / src.name).write_text(text)
        _protoc(Path(tmp), sorted(tree.glob("*.proto")), out_dir)
    package = out_dir / "proto" / GOBGP_PACKAGE
    (package / "__init__.py").write_text(GOBGP_INIT)
    return sources


def _stale(produced_dir: Path, committed_dir: Path) -> list[str]:
    stale = []
    for produced in sorted(p for p in produced_dir.iterdir() if p.is_file()):
        committed = committed_dir / produced.name
        if not committed.exists() or not filecmp.cmp(produced, committed, shallow=False):
            stale.append(produced.name)
    return stale


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    if not args.check:
        generate(ROOT)
        if not generate_gobgp(ROOT):
            print(f"note: no GoBGP .proto files in {GOBGP_API}; proto/{GOBGP_PACKAGE} not regenerated")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = _stale(Path(tmp) / "proto", PROTO_DIR)
        if generate_gobgp(Path(tmp)):
            gobgp_dir = PROTO_DIR / GOBGP_PACKAGE
            stale += [f"{GOBGP_PACKAGE}/{name}"
                      for name in _stale(Path(tmp) / "proto" / GOBGP_PACKAGE, gobgp_dir)]
        else:
            print(f"note: no GoBGP .proto files in {GOBGP_API}; proto/{GOBGP_PACKAGE} not checked")
        if stale:
            print("stale generated stubs: " + ", ".join(stale) + " (run: python -m proto.generate)")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
