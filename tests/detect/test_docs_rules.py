"""docs/detect.md shows the default rules exactly as the code has them."""

from __future__ import annotations

from pathlib import Path

from fleetlens.detect.config import RulesConfig, dump_rules, load_rules


def test_documented_defaults_are_the_code_defaults():
    text = (Path(__file__).resolve().parents[2] / "docs" / "detect.md").read_text()
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert block == dump_rules(RulesConfig())


def test_a_rules_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("error_log:\n  event_types: [boom]\ncooldown_s: 60\n")
    rules = load_rules(path)
    assert rules.error_log.event_types == ["boom"] and rules.cooldown_s == 60
    assert rules.payment_failures_same_provider == RulesConfig().payment_failures_same_provider


def test_a_bad_rules_file_is_an_error_naming_the_key(tmp_path):
    import pytest

    path = tmp_path / "rules.yaml"
    path.write_text("error_log:\n  evnet_types: [boom]\n")
    with pytest.raises(Exception, match="evnet_types"):
        load_rules(path)
