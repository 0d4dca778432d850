"""Generated gRPC stubs for the GoBGP 3.10 API (``python -m proto.generate``; do not edit).

Source: the Debian package golang-github-osrg-gobgp-dev, /usr/share/gocode/src/github.com/osrg/gobgp/api."""
