"""Fixtures for Mininet end-to-end tests: each lab is started and stopped by handle."""

from __future__ import annotations

import os

import pytest

from labs.lab import Lab

if os.geteuid() != 0:
    pytest.skip("e2e tests need root (Mininet, Open vSwitch)", allow_module_level=True)


@pytest.fixture
def lab_factory():
    """Start labs on demand; every lab started here is stopped at teardown."""
    labs: list[Lab] = []

    def start(topology: str, **kwargs) -> Lab:
        lab = Lab(topology, **kwargs)
        labs.append(lab)
        lab.start()
        lab.wait_discovery(timeout_s=60)
        lab.wait_edges()
        return lab

    yield start
    for lab in labs:
        lab.stop()
