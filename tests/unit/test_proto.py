"""The committed gRPC stubs are what ``python -m proto.generate`` produces.

protoc runs in a child process: grpc_tools' embedded protoc and TensorFlow's
protobuf runtime crash when loaded into one process (other tests import both)."""

import shutil
import subprocess
import sys
from pathlib import Path

from proto import generate

CHECK = ("import sys; from proto import generate; sys.path.insert(0, '.'); "
         "from pathlib import Path; root = Path(sys.argv[1]); "
         "generate.PROTO_DIR = root / 'proto'; generate.ROOT = root; "
         "sys.exit(generate.main(['--check']))")


def _check(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHECK, str(root)], capture_output=True, text=True,
                          cwd=generate.ROOT, timeout=120)


def test_generated_stubs_are_fresh():
    result = _check(generate.ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_check_notices_a_stale_stub(tmp_path):
    copy = tmp_path / "proto"
    shutil.copytree(generate.PROTO_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stub = copy / "controller_pb2_grpc.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    result = _check(tmp_path)
    assert result.returncode == 1
    assert "controller_pb2_grpc.py" in result.stdout
