"""Loading policies: validated against the schema, all or nothing, errors name file and line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from governance.policy.bundle import PolicyBundle, PolicyError

from .conftest import POLICIES


def line_of(path: Path, fragment: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if fragment in line)


def load_error(directory: Path) -> str:
    with pytest.raises(PolicyError) as raised:
        PolicyBundle.load(directory)
    return str(raised.value)


def test_repository_policies_load_with_ids_messages_and_thresholds(bundle):
    gate_rules = {rule.id for rule in bundle.gate_rules}
    assert gate_rules == {
        "data_quality.validation_passed",
        "data_quality.data_age",
        "performance.auc_floor",
        "performance.ks_floor",
        "performance.champion_auc_drop",
        "fairness.disparate_impact",
        "fairness.equalized_odds",
        "explainability.protected_proxy",
        "explainability.encoded_attribute",
        "documentation.model_card_complete",
        "separation_of_duties.trainer_recorded",
    }
    assert all(rule.message for rule in bundle.rules.values())
    assert {rule.id for rule in bundle.rules.values() if rule.unwaivable} == {
        "data_quality.validation_passed",
        "separation_of_duties.trainer_recorded",
    }
    assert bundle.rule("performance.auc_floor").location == f"{POLICIES}/performance.cedar:3"
    assert bundle.roles == {
        "data_scientist",
        "model_risk_approver",
        "ml_platform",
        "business_owner",
        "compliance_manager",
        "auditor",
        "automation",
    }


def test_digest_covers_every_file_and_nothing_else(policy_copy, bundle):
    assert PolicyBundle.load(policy_copy).digest == bundle.digest  # same bytes, other directory
    (policy_copy / "notes.txt").write_text("not a policy")
    assert PolicyBundle.load(policy_copy).digest == bundle.digest
    with (policy_copy / "documentation.cedar").open("a") as fh:
        fh.write("\n// a comment changes the bytes\n")
    assert PolicyBundle.load(policy_copy).digest != bundle.digest
    (policy_copy / "documentation.cedar").rename(policy_copy / "documents.cedar")
    renamed = PolicyBundle.load(policy_copy).digest
    assert renamed not in (bundle.digest,) and re.fullmatch(r"[0-9a-f]{64}", renamed)


def test_syntax_error_names_file_and_line(policy_copy):
    path = policy_copy / "explainability.cedar"
    path.write_text(path.read_text().replace('resource.risk_tier == "medium"', 'resource.risk_tier = "medium"'))
    line = line_of(path, 'risk_tier = "medium"')
    assert f"{path}:{line}: syntax error: '=' is not a valid operator" in load_error(policy_copy)


def test_missing_semicolon_points_at_the_next_rule(policy_copy):
    path = policy_copy / "documentation.cedar"
    path.write_text(
        path.read_text().replace("unless { resource.card_complete };", "unless { resource.card_complete }")
        + '\n@id("documentation.more")\n@message("m")\nforbid (principal, action == Action::"promote", resource)\n'
        "unless { resource.card_complete };\n"
    )
    line = line_of(path, "documentation.more")
    assert f"{path}:{line}: syntax error: unexpected token `@`" in load_error(policy_copy)


def test_unknown_attribute_names_file_line_and_attribute(policy_copy):
    path = policy_copy / "performance.cedar"
    path.write_text(
        path.read_text().replace('resource.ks.lessThan(decimal("0.2000"))', 'resource.kss.lessThan(decimal("0.2000"))')
    )
    message = load_error(policy_copy)
    assert f"{path}:{line_of(path, 'resource.kss')}: " in message
    assert "attribute `kss` on entity type `ReleaseCandidate` not found" in message


def test_type_error_names_file_and_line(policy_copy):
    path = policy_copy / "documentation.cedar"
    path.write_text(
        path.read_text() + '\n@id("documentation.typed")\n@message("m")\n'
        'forbid (principal, action == Action::"promote", resource)\n'
        'when { resource.card_complete.lessThan(decimal("0.5000")) };\n'
    )
    message = load_error(policy_copy)
    assert f"{path}:{line_of(path, 'documentation.typed')}: " in message
    assert "unexpected type: expected decimal but saw Bool" in message


def test_malformed_decimal_threshold_names_file_line_and_literal(policy_copy):
    path = policy_copy / "explainability.cedar"
    path.write_text(path.read_text().replace('decimal("0.5000")', 'decimal("0.5.000")', 1))
    message = load_error(policy_copy)
    assert f"{path}:{line_of(path, '0.5.000')}: " in message
    assert 'failed to parse as a decimal value: `"0.5.000"`' in message


def test_misspelt_role_or_action_fails_validation(policy_copy):
    path = policy_copy / "authorisation.cedar"
    path.write_text(
        path.read_text().replace(
            'Role::"business_owner", action == Action::"enable"', 'Role::"busines_owner", action == Action::"enable"'
        )
    )
    message = load_error(policy_copy)
    assert f"{path}:{line_of(path, 'busines_owner')}: " in message and "busines_owner" in message


@pytest.mark.parametrize(
    "policy, problem",
    [
        (
            '@message("m")\nforbid (principal, action == Action::"promote", resource) unless { resource.card_complete };',
            'rule without @id("concern.rule")',
        ),
        (
            '@id("documentation.quiet")\nforbid (principal, action == Action::"promote", resource) unless { resource.card_complete };',
            "rule documentation.quiet has no @message",
        ),
        (
            '@id("Documentation Rule")\n@message("m")\nforbid (principal, action == Action::"promote", resource) unless { resource.card_complete };',
            "is not of the form concern.rule",
        ),
        (
            '@id("documentation.model_card_complete")\n@message("m")\nforbid (principal, action == Action::"promote", resource) unless { resource.card_complete };',
            "@id 'documentation.model_card_complete' is already used at",
        ),
        (
            '@id("documentation.typo")\n@message("m")\n@unwaiveable\nforbid (principal, action == Action::"promote", resource) unless { resource.card_complete };',
            "unknown annotation @unwaiveable",
        ),
        (
            '@id("documentation.sticky")\n@message("m")\n@unwaivable\nforbid (principal, action == Action::"deploy", resource);',
            "@unwaivable only applies to release-gate rules",
        ),
        (
            '@id("documentation.vague")\n@message("m")\nforbid (principal, action == Action::"promote", resource) when { resource has champion_auc_drop };',
            "compares no resource attribute with a literal threshold",
        ),
        (
            '@id("documentation.everything")\n@message("m")\nforbid (principal, action, resource) when { principal is System };',
            "must name its action(s)",
        ),
    ],
)
def test_rule_annotation_problems_name_file_and_line(policy_copy, policy, problem):
    path = policy_copy / "documentation.cedar"
    original_lines = len(path.read_text().splitlines())
    path.write_text(path.read_text() + "\n" + policy + "\n")
    message = load_error(policy_copy)
    assert f"{path}:{original_lines + 2}: " in message
    assert problem in message


def test_every_problem_of_every_file_is_reported_at_once(policy_copy):
    for name, old, new in [
        ("performance.cedar", "resource.auc.lessThan", "resource.aucc.lessThan"),
        ("fairness.cedar", '@id("fairness.equalized_odds")', ""),
    ]:
        path = policy_copy / name
        path.write_text(path.read_text().replace(old, new))
    message = load_error(policy_copy)
    assert "performance.cedar" in message and "aucc" in message
    assert "fairness.cedar" in message and "rule without @id" in message


def test_schema_errors_name_the_schema_file_and_line(policy_copy):
    path = policy_copy / "schema.cedarschema"
    text = path.read_text()
    path.write_text(text.replace("  auc: decimal,", "  auc: decimall,"))
    message = load_error(policy_copy)
    assert f"{path}:{line_of(path, 'auc: decimall')}: failed to resolve type: decimall" in message
    path.write_text(text.replace("  ks: decimal,", "  ks: decimal,,"))
    assert f"{path}:{line_of(path, 'ks: decimal,,')}: error parsing schema" in load_error(policy_copy)


def test_missing_schema_or_policies_and_non_utf8(policy_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "schema file not found" in load_error(empty)
    (empty / "schema.cedarschema").write_bytes((policy_copy / "schema.cedarschema").read_bytes())
    assert "no *.cedar policy files" in load_error(empty)
    (policy_copy / "waivers.cedar").write_bytes(b"\xff\xfe")
    assert f"{policy_copy / 'waivers.cedar'}: not UTF-8" in load_error(policy_copy)
