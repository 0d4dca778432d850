"""The stitching security policy: deny by default, first matching rule decides.

    policy = StitchPolicy(config.stitching.policy)
    verdict = policy.check("acme", 100, 200, "segment")
    if not verdict.allowed:
        ...  # PERMISSION_DENIED, naming verdict.rule

A rule matches a request when its tenant is the request's (or ``*``), its ``between``
pair is the request's pair of VNIDs in either order (``*`` matches any VNID), and its
``kinds`` include the request's kind. An ``allow`` rule also says whether the
stitched traffic must be encrypted and may cap bandwidth stitches (``max_mbps``); a
request above the cap is refused by that rule. No matching rule: refused by
``default-deny``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from apps.stitching.config import STITCH_KINDS, StitchRuleConfig

DEFAULT_DENY = "default-deny"


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    rule: str                       # the rule that decided, or DEFAULT_DENY
    reason: str                     # one sentence for logs and API errors
    encrypt: bool = False           # stitched traffic must be encrypted
    max_mbps: float | None = None


def _vn(value) -> str:
    return "any VN" if value == "*" else f"VN {value}"


class StitchPolicy:
    def __init__(self, rules: Iterable[StitchRuleConfig] = ()):
        self.rules = tuple(rules)

    def check(self, tenant: str, vnid_a: int, vnid_b: int, kind: str, bandwidth_mbps: float = 0.0) -> Verdict:
        if kind not in STITCH_KINDS:
            raise ValueError(f"unknown stitch kind {kind!r} (one of {', '.join(STITCH_KINDS)})")
        what = f"tenant {tenant}: {kind} stitch VN {vnid_a} <-> VN {vnid_b}"
        for rule in self.rules:
            if not self._matches(rule, tenant, vnid_a, vnid_b, kind):
                continue
            if rule.action == "deny":
                return Verdict(False, rule.name, f"{what} refused by rule '{rule.name}'")
            if kind == "bandwidth" and rule.max_mbps is not None and bandwidth_mbps > rule.max_mbps:
                return Verdict(False, rule.name, f"{what} at {bandwidth_mbps:g} Mbit/s refused by rule "
                                                 f"'{rule.name}': it allows at most {rule.max_mbps:g} Mbit/s")
            return Verdict(True, rule.name, f"{what} allowed by rule '{rule.name}'"
                           + (" (encrypted)" if rule.encrypt else ""), rule.encrypt, rule.max_mbps)
        return Verdict(False, DEFAULT_DENY, f"{what} refused: no rule allows it ({DEFAULT_DENY})")

    @staticmethod
    def _matches(rule: StitchRuleConfig, tenant: str, a: int, b: int, kind: str) -> bool:
        if rule.tenant not in ("*", tenant) or kind not in rule.kinds:
            return False
        x, y = rule.between

        def eq(pattern, vnid) -> bool:
            return pattern == "*" or pattern == vnid
        return (eq(x, a) and eq(y, b)) or (eq(x, b) and eq(y, a))

    def describe(self) -> list[str]:
        return [f"{r.name}: {r.action} {r.tenant} {_vn(r.between[0])} <-> {_vn(r.between[1])} "
                f"({', '.join(r.kinds)}){' encrypted' if r.encrypt else ''}"
                + (f" up to {r.max_mbps:g} Mbit/s" if r.max_mbps else "") for r in self.rules]
