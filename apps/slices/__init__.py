"""Network slices: a client's service behind a VIP range, served by a scaled set of pool members.

This package is the pure domain layer: slice definitions and their validation
(``model``), pools of member hosts (``pool``), VIP ranges and per-member addresses
(``vips``), the forecast-driven scaling decision (``scaling``) and SQLite
persistence (``store``). Nothing here talks to switches or reads the clock; the
data-plane and API wiring live elsewhere and pass ``now`` in.
"""
