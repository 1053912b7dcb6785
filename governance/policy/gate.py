"""The release gate: may this model version be promoted towards human approval?

`evaluate_gate` builds the version's Cedar `ReleaseCandidate` from its
`GateEvidence`, asks Cedar once, and explains every rule that denied with the
attribute measured, the value and the threshold the rule applied (read from the
policy). A waiver sets a denying rule aside only if it names exactly this
model, version and rule, has not expired and the rule is not @unwaivable; once
the waived rules are set aside, the promote permits must still allow.

Fail closed: any error Cedar reports while evaluating (a forbid rule that could
not be evaluated is otherwise silently skipped) denies the promotion.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import cedarpy

from governance.digests import digest_of, jsonable
from governance.policy.bundle import GATE_ACTION, SCHEMA_FILE, PolicyBundle, PolicyError, Rule
from governance.policy.evidence import GateEvidence, candidate_attributes, measured_value
from governance.timestamps import utc_now, utc_timestamp

RELEASE_GATE = "release_gate"  # the System principal that asks for promotion
_PRINCIPAL = {"type": "System", "id": RELEASE_GATE}
_PRINCIPAL_ENTITY = {
    "uid": _PRINCIPAL,
    "attrs": {"name": RELEASE_GATE},
    "parents": [{"type": "Role", "id": "automation"}],
}


@dataclass(frozen=True)
class Waiver:
    """A granted waiver, already verified (signature, roster, Cedar) by governance.policy.waivers."""

    model: str
    version: str
    rule: str
    until: datetime
    granted_by: str
    granted_at: datetime
    reason: str
    statement_digest: str

    def covers(self, model: str, version: str, rule: str, now: datetime) -> bool:
        return (self.model, self.version, self.rule) == (model, version, rule) and now < self.until

    def to_dict(self) -> dict[str, str]:
        return {
            "model": self.model,
            "version": self.version,
            "rule": self.rule,
            "until": utc_timestamp(self.until),
            "granted_by": self.granted_by,
            "granted_at": utc_timestamp(self.granted_at),
            "reason": self.reason,
            "statement_digest": self.statement_digest,
        }


@dataclass(frozen=True)
class Finding:
    """One comparison that made a rule deny: the value measured and the threshold applied."""

    attribute: str
    measured: Any
    threshold: Any
    requirement: str
    detail: str | None  # where the value came from, from the evidence's context

    def to_dict(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "measured": jsonable(self.measured),
            "threshold": self.threshold,
            "requirement": self.requirement,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RuleDenial:
    rule: str
    message: str
    unwaivable: bool
    findings: tuple[Finding, ...]
    waiver: Waiver | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "message": self.message,
            "unwaivable": self.unwaivable,
            "findings": [finding.to_dict() for finding in self.findings],
            "waiver": self.waiver.to_dict() if self.waiver else None,
        }

    def reason(self) -> str:
        """One line for people: rule, message, each finding, and the waiver if any."""
        findings = "; ".join(describe_finding(f.to_dict()) for f in self.findings)
        text = f"{self.rule}: {self.message} {findings}"
        if self.waiver:
            text += (
                f" [WAIVED by {self.waiver.granted_by} until {utc_timestamp(self.waiver.until)}: {self.waiver.reason}]"
            )
        return text


@dataclass(frozen=True)
class GateDecision:
    model: str
    version: str
    risk_tier: str
    trained_by: tuple[str, ...]
    requested_by: tuple[str, ...]
    allowed: bool
    policy_digest: str
    evidence_digest: str
    decided_at: str
    valid_until: str | None  # the earliest end of a waiver this decision relies on
    rules_evaluated: tuple[str, ...]
    denials: tuple[RuleDenial, ...]  # every rule that denied, waived or not
    errors: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "risk_tier": self.risk_tier,
            "trained_by": list(self.trained_by),
            "requested_by": list(self.requested_by),
            "allowed": self.allowed,
            "policy_digest": self.policy_digest,
            "evidence_digest": self.evidence_digest,
            "decided_at": self.decided_at,
            "valid_until": self.valid_until,
            "rules_evaluated": list(self.rules_evaluated),
            "denials": [denial.to_dict() for denial in self.denials],
            "errors": list(self.errors),
        }

    def reasons(self) -> list[str]:
        return [denial.reason() for denial in self.denials] + [f"error: {error}" for error in self.errors]


# Figures in reasons are rounded as the model card rounds them.
CARD_DIGITS = 3


def describe_finding(finding: dict[str, Any], digits: int = CARD_DIGITS) -> str:
    """`attribute = measured, requires ... (detail)` from a finding as `Finding.to_dict` writes it (and a gate
    decision file keeps it). A measured number is rounded to `digits`, unless that rounding would print the
    threshold itself: then it is given in full (0.69996 against a 0.7 floor reads 0.69996, not 0.700)."""
    measured = finding["measured"]
    shown = json.dumps(measured)
    if isinstance(measured, float) and math.isfinite(measured):
        rounded = f"{measured:.{digits}f}"
        threshold = finding.get("threshold")
        if not (isinstance(threshold, (int, float, str)) and _same_at(rounded, threshold, digits)):
            shown = rounded
    detail = f" ({finding['detail']})" if finding.get("detail") else ""
    return f"{finding['attribute']} = {shown}, requires {finding['requirement']}{detail}"


def _same_at(shown: str, threshold: Any, digits: int) -> bool:
    try:
        return shown == f"{float(threshold):.{digits}f}"
    except ValueError:
        return False


def evaluate_gate(
    bundle: PolicyBundle, evidence: GateEvidence, waivers: Iterable[Waiver] = (), now: datetime | None = None
) -> GateDecision:
    """Decide whether `evidence`'s version may be promoted, under `bundle`, with `waivers` applied."""
    now = now or utc_now()
    attributes = candidate_attributes(evidence)
    entities = _entities(bundle, attributes)
    result = _ask(bundle.policies, bundle, entities, attributes)
    errors = list(result.diagnostics.errors)
    denying = set() if result.allowed else set(result.diagnostics.reasons)
    denials = tuple(
        _denial(rule, evidence, attributes, tuple(waivers), now) for rule in bundle.rules.values() if rule.id in denying
    )
    if not result.allowed and not denials and not errors:
        errors.append(
            f"no rule permits {GATE_ACTION}: the policies in {bundle.directory} have no promote permit that applies"
        )
    allowed = not errors and (
        result.allowed or _all_waived(denials) and _ask(bundle.gate_permits, bundle, entities, attributes).allowed
    )
    waived_until = [denial.waiver.until for denial in denials if denial.waiver]
    return GateDecision(
        model=evidence.model,
        version=evidence.version,
        risk_tier=evidence.risk_tier,
        trained_by=tuple(evidence.trained_by),
        requested_by=tuple(evidence.requested_by),
        allowed=allowed,
        policy_digest=bundle.digest,
        evidence_digest=digest_of(jsonable(evidence.to_dict())),
        decided_at=utc_timestamp(now),
        valid_until=utc_timestamp(min(waived_until)) if allowed and waived_until else None,
        rules_evaluated=tuple(rule.id for rule in bundle.rules.values() if GATE_ACTION in rule.actions),
        denials=denials,
        errors=tuple(errors),
    )


def _entities(bundle: PolicyBundle, attributes: dict[str, Any]) -> cedarpy.Entities:
    candidate = {
        "uid": _resource(attributes),
        "attrs": {name: _cedar_value(value) for name, value in attributes.items()},
        "parents": [{"type": "Model", "id": attributes["model"]}],
    }
    try:
        return cedarpy.Entities.from_json_str(json.dumps([_PRINCIPAL_ENTITY, candidate]), bundle.schema)
    except ValueError as exc:
        raise PolicyError(
            f"{bundle.directory / SCHEMA_FILE}: the ReleaseCandidate built from gate evidence "
            f"does not conform to the schema ({exc})"
        ) from None


def _ask(
    policies: cedarpy.PolicySet, bundle: PolicyBundle, entities: cedarpy.Entities, attributes: dict[str, Any]
) -> cedarpy.AuthzResult:
    request = {
        "principal": _PRINCIPAL,
        "action": {"type": "Action", "id": GATE_ACTION},
        "resource": _resource(attributes),
        "context": {},
    }
    return cedarpy.is_authorized(request, policies, entities, schema=bundle.schema)


def _resource(attributes: dict[str, Any]) -> dict[str, str]:
    return {"type": "ReleaseCandidate", "id": f"{attributes['model']}/{attributes['version']}"}


def _cedar_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"__extn": {"fn": "decimal", "arg": str(value)}}
    return value


def _denial(
    rule: Rule, evidence: GateEvidence, attributes: dict[str, Any], waivers: tuple[Waiver, ...], now: datetime
) -> RuleDenial:
    applicable = [check for check in rule.checks if check.applies_to(evidence.risk_tier)]
    failing = [
        check for check in applicable if check.attribute in attributes and check.denies(attributes[check.attribute])
    ]
    findings = tuple(
        Finding(
            check.attribute,
            measured_value(evidence, check.attribute),
            check.threshold_json(),
            check.requirement,
            _detail(evidence, check.attribute),
        )
        for check in failing or applicable
    )
    waiver = (
        None
        if rule.unwaivable
        else next((w for w in waivers if w.covers(evidence.model, evidence.version, rule.id, now)), None)
    )
    return RuleDenial(rule.id, rule.message, rule.unwaivable, findings, waiver)


def _all_waived(denials: tuple[RuleDenial, ...]) -> bool:
    return bool(denials) and all(denial.waiver is not None for denial in denials)


# What a decision says about a value when the evidence's context does not explain it.
_DEFAULT_DETAIL: dict[str, Callable[[GateEvidence], str]] = {
    "card_complete": lambda e: "missing sections: " + (", ".join(e.card_missing_sections) or "none listed"),
    "di_ci_high_min": lambda e: f"lowest point estimate {e.di_point_min:.4f}",
    "di_ci_low_max": lambda e: f"highest point estimate {e.di_point_max:.4f}",
    "champion_auc_drop": lambda e: f"champion AUC {e.champion_auc:.4f}, this version {e.auc:.4f}",
    "equalized_odds_ci_low_max": lambda e: f"largest point estimate {e.equalized_odds_difference_max:.4f}",
}


def _detail(evidence: GateEvidence, attribute: str) -> str | None:
    if attribute in evidence.context:
        return evidence.context[attribute]
    describe = _DEFAULT_DETAIL.get(attribute)
    return describe(evidence) if describe else None
