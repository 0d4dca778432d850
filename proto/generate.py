"""Generate the Python gRPC stubs for every .proto in this folder.

Run from anywhere: ``python -m proto.generate``. ``--check`` exits non-zero
when the committed stubs differ from what the .proto files produce (a test runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

PROTO_DIR = Path(__file__).resolve().parent
ROOT = PROTO_DIR.parent


def generate(out_dir: Path) -> list[Path]:
    protos = sorted(PROTO_DIR.glob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    for proto in protos:
        args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out_dir}",
                f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", str(proto.relative_to(ROOT))]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {proto}")
    return protos


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args(argv)
    if not args.check:
        generate(ROOT)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = []
        for produced in sorted((Path(tmp) / "proto").iterdir()):
            committed = PROTO_DIR / produced.name
            if not committed.exists() or not filecmp.cmp(produced, committed, shallow=False):
                stale.append(produced.name)
        if stale:
            print("stale generated stubs: " + ", ".join(stale) + " (run: python -m proto.generate)")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
