"""The committed gRPC stubs are what ``python -m proto.generate`` produces."""

import shutil

from proto import generate


def test_generated_stubs_are_fresh(capsys):
    assert generate.main(["--check"]) == 0, capsys.readouterr().out


def test_check_notices_a_stale_stub(tmp_path, monkeypatch, capsys):
    copy = tmp_path / "proto"
    shutil.copytree(generate.PROTO_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    stub = copy / "controller_pb2_grpc.py"
    stub.write_text(stub.read_text() + "\n# edited by hand\n")
    monkeypatch.setattr(generate, "PROTO_DIR", copy)
    monkeypatch.setattr(generate, "ROOT", tmp_path)
    assert generate.main(["--check"]) == 1
    assert "controller_pb2_grpc.py" in capsys.readouterr().out
