"""Foresight's tests: unit (no root), integration (real Open vSwitch), e2e (Mininet),
and ``lib``, what they share. A package so that helpers import as ``tests.lib.*``
under ``--import-mode=importlib`` and controller processes can load ``tests.lib``
providers by dotted path."""
