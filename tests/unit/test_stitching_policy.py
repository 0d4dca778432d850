"""The stitching policy: deny by default, first matching rule decides, and every
verdict names its rule."""

from __future__ import annotations

import pytest

from apps.stitching.policy import DEFAULT_DENY, StitchPolicy
from apps.stitching.config import StitchingConfig
from controller.config import ConfigError, parse


def _policy(*rules: dict) -> StitchPolicy:
    return StitchPolicy(StitchingConfig.model_validate({"policy": list(rules)}).policy)


def test_nothing_is_allowed_without_a_rule():
    verdict = StitchPolicy().check("acme", 100, 200, "segment")
    assert not verdict.allowed and verdict.rule == DEFAULT_DENY
    assert "no rule allows it" in verdict.reason


def test_an_allow_rule_matches_either_direction_and_says_whether_to_encrypt():
    policy = _policy({"name": "web-db", "tenant": "acme", "between": [100, 200], "encrypt": True})
    for a, b in ((100, 200), (200, 100)):
        verdict = policy.check("acme", a, b, "direct")
        assert verdict.allowed and verdict.rule == "web-db" and verdict.encrypt


def test_another_tenant_or_pair_or_kind_is_refused_by_default():
    policy = _policy({"name": "web-db", "tenant": "acme", "between": [100, 200], "kinds": ["segment"]})
    assert policy.check("acme", 100, 200, "segment").allowed
    assert policy.check("globex", 100, 200, "segment").rule == DEFAULT_DENY
    assert policy.check("acme", 100, 300, "segment").rule == DEFAULT_DENY
    assert policy.check("acme", 100, 200, "direct").rule == DEFAULT_DENY


def test_the_first_matching_rule_decides():
    policy = _policy({"name": "no-300", "action": "deny", "tenant": "*", "between": ["*", 300]},
                     {"name": "acme-any", "tenant": "acme", "between": ["*", "*"]})
    refused = policy.check("acme", 100, 300, "segment")
    assert not refused.allowed and refused.rule == "no-300" and "refused by rule 'no-300'" in refused.reason
    assert policy.check("acme", 100, 200, "segment").rule == "acme-any"


def test_a_bandwidth_stitch_above_the_cap_is_refused_by_that_rule():
    policy = _policy({"name": "capped", "tenant": "acme", "between": [100, 200], "max_mbps": 10})
    assert policy.check("acme", 100, 200, "bandwidth", 5.0).allowed
    refused = policy.check("acme", 100, 200, "bandwidth", 20.0)
    assert not refused.allowed and refused.rule == "capped" and "at most 10 Mbit/s" in refused.reason


def test_an_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown stitch kind 'tunnel'"):
        StitchPolicy().check("acme", 1, 2, "tunnel")


@pytest.mark.parametrize("rules, key", [
    ("[{name: r, tenant: t, between: [0, 2]}]", "stitching.policy.0.between"),
    ("[{name: r, tenant: t, between: [1, 2], kinds: [tunnel]}]", "stitching.policy.0.kinds.0"),
    ("[{name: r, tenant: t, between: [1, 2]}, {name: r, tenant: t, between: [3, 4]}]", "stitching.policy"),
    ("[{name: r, tenant: t, between: [1, 2], action: permit}]", "stitching.policy.0.action"),
])
def test_a_bad_rule_is_refused_naming_its_key(rules, key):
    with pytest.raises(ConfigError, match=rf"{key.replace('.', '[.]')}: "):
        parse(f"stitching:\n  policy: {rules}\n", source="c.yaml")


def test_a_bad_predicted_stitch_is_refused_naming_its_key():
    with pytest.raises(ConfigError, match=r"stitching[.]predicted[.]0: .*a bandwidth stitch needs the rate"):
        parse("stitching:\n  predicted: [{tenant: t, between: [1, 2], kind: bandwidth, open_mbps: 1}]\n",
              source="c.yaml")
