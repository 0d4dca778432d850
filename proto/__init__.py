"""The public API: .proto files and their generated stubs (python -m proto.generate)."""
