"""The policy's judgement of a window (policies/monitoring.cedar).

A window's measurements become the attributes of a Cedar `MonitoringWindow`,
rounded to Cedar's four decimal digits towards alerting, and System::"monitoring"
asks whether the window calls for `retrain` (drift) and for `contain` (harm).
Per-feature figures (a feature's drift distance and its importance in the
version's decisions) are judged one feature at a time as `FeatureDrift`
resources: the window calls for retraining when the window or any one of its
features does, so a strong drift of one important feature is enough.
How harm is contained is asked next, with whether the previous approved version
passes on the same window: `auto_rollback` or `auto_disable`. Nothing about
what to do is decided here; every threshold and choice is in the policy, and
each rule that fired is quoted with the value measured and its threshold (read
from the rule itself).

Fail closed: Cedar errors while evaluating a rule raise PolicyError, so a
window is never judged harmless because a rule could not be evaluated.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

import cedarpy

from governance.monitoring.figures import Measurement
from governance.policy.bundle import SCHEMA_FILE, PolicyBundle, PolicyError

RETRAIN, CONTAIN = "retrain", "contain"
ROLLBACK, DISABLE, ROLLBACK_TARGET = "auto_rollback", "auto_disable", "auto_rollback_target"
MONITORING = "monitoring"
WINDOW, FEATURE, GUARD = "MonitoringWindow", "FeatureDrift", "FairnessGuard"
_PRINCIPAL = {"type": "System", "id": MONITORING}
_PRINCIPAL_ENTITY = {
    "uid": _PRINCIPAL,
    "attrs": {"name": MONITORING},
    "parents": [{"type": "Role", "id": "automation"}],
}
_QUANTUM = Decimal("0.0001")
_LIMIT = Decimal(1_000_000_000)
_FEATURE_DECIMALS = {"drift_distance", "importance"}  # FeatureDrift's decimal attributes (schema.cedarschema)
_LOWER_IS_WORSE = {"di_ci_high_min"}  # rounded down; every other figure is worse when higher, rounded up


@dataclass(frozen=True)
class Finding:
    """A rule that decided, and the comparisons that made it fire."""

    rule: str
    message: str
    conditions: tuple[str, ...]  # e.g. "score_psi = 0.2130 (fires when >= 0.1000)"

    def describe(self) -> str:
        return f"{self.rule} ({'; '.join(self.conditions)})" if self.conditions else self.rule


@dataclass(frozen=True)
class Verdict:
    action: str
    allowed: bool
    findings: tuple[Finding, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "allowed": self.allowed,
            "findings": [
                {"rule": f.rule, "message": f.message, "conditions": list(f.conditions)} for f in self.findings
            ],
        }


@dataclass(frozen=True)
class Judgement:
    """What the policy says about one window of one version's decisions."""

    model: str
    version: int
    risk_tier: str
    window: str  # "<first seq>-<last seq>"
    stream: str  # live | labelled
    decisions: int
    measurements: tuple[Measurement, ...]
    retrain: Verdict
    contain: Verdict
    policy_digest: str

    @property
    def alert(self) -> bool:
        return self.retrain.allowed or self.contain.allowed

    @property
    def attributes(self) -> dict[str, float]:
        return {name: value for m in self.measurements for name, value in m.attributes.items()}

    @property
    def first_seq(self) -> int:
        return int(self.window.split("-")[0])

    @property
    def last_seq(self) -> int:
        return int(self.window.split("-")[1])

    def summary(self) -> str:
        """One line for people: the window, what was measured, and what the policy says."""
        measured = "; ".join(m.summary for m in self.measurements)
        head = (
            f"{self.model}-v{self.version} window {self.window} ({self.decisions} {self.stream} decisions): {measured}"
        )
        calls = [
            f"{v.action.upper()} by {', '.join(f.describe() for f in v.findings)}"
            for v in (self.contain, self.retrain)
            if v.allowed
        ]
        return f"{head} -> {' and '.join(calls) if calls else 'within policy'}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "risk_tier": self.risk_tier,
            "window": self.window,
            "stream": self.stream,
            "decisions": self.decisions,
            "alert": self.alert,
            "measurements": [m.to_dict() for m in self.measurements],
            "retrain": self.retrain.to_dict(),
            "contain": self.contain.to_dict(),
            "policy_digest": self.policy_digest,
        }


def judge(
    bundle: PolicyBundle,
    *,
    model: str,
    version: int,
    risk_tier: str,
    window: str,
    stream: str,
    decisions: int,
    measurements: list[Measurement],
) -> Judgement:
    """Ask the policy whether this window (or one of its features) calls for retraining, and for containment."""
    figures = {name: value for m in measurements for name, value in m.attributes.items()}
    attributes = _attributes(model, version, risk_tier, decisions, figures)
    features = {name: figures for m in measurements for name, figures in m.features.items()}
    retrain = _with_features(_ask(bundle, RETRAIN, attributes, {}), ask_features(bundle, attributes, features))
    return Judgement(
        model=model,
        version=version,
        risk_tier=risk_tier,
        window=window,
        stream=stream,
        decisions=decisions,
        measurements=tuple(measurements),
        retrain=retrain,
        contain=_ask(bundle, CONTAIN, attributes, {}),
        policy_digest=bundle.digest,
    )


def ask_features(
    bundle: PolicyBundle, window: dict[str, Any], features: dict[str, dict[str, Any]]
) -> dict[str, Verdict]:
    """Whether each feature's figures alone call for retraining (one Cedar batch, `FeatureDrift` resources)."""
    if not features:
        return {}
    identity = {k: window[k] for k in ("model", "version", "risk_tier")}
    attributes = {
        name: {**identity, "feature": name, **{k: _figure(k, v) for k, v in figures.items()}}
        for name, figures in features.items()
    }
    entities = [_PRINCIPAL_ENTITY] + [
        _entity(FEATURE, f"{window['model']}/{window['version']}/{name}", attrs) for name, attrs in attributes.items()
    ]
    requests = [
        {
            "principal": _PRINCIPAL,
            "action": {"type": "Action", "id": RETRAIN},
            "resource": {"type": FEATURE, "id": f"{window['model']}/{window['version']}/{name}"},
            "context": {},
        }
        for name in attributes
    ]
    results = cedarpy.is_authorized_batch(requests, bundle.policies, _entities(bundle, entities), schema=bundle.schema)
    return {
        name: _verdict(bundle, RETRAIN, request["resource"]["id"], result, attrs, prefix=f"{name}: ")
        for (name, attrs), request, result in zip(attributes.items(), requests, results)
    }


def _with_features(window: Verdict, features: dict[str, Verdict]) -> Verdict:
    """The window's verdict, allowed too when a feature's is; each rule quoted once, with every feature it fired on."""
    fired = [v for v in features.values() if v.allowed]
    if not fired:
        return window
    merged: dict[str, Finding] = {f.rule: f for f in window.findings}
    for finding in (f for v in fired for f in v.findings):
        known = merged.get(finding.rule)
        merged[finding.rule] = (
            finding if known is None else Finding(known.rule, known.message, known.conditions + finding.conditions)
        )
    return Verdict(window.action, True, tuple(merged.values()))


def rejudge(bundle: PolicyBundle, recorded: dict[str, Any]) -> Judgement:
    """Judge again, under the policy in force now, the measurements a judgement recorded (`to_dict`)."""
    return judge(
        bundle,
        model=recorded["model"],
        version=recorded["version"],
        risk_tier=recorded["risk_tier"],
        window=recorded["window"],
        stream=recorded["stream"],
        decisions=recorded["decisions"],
        measurements=[Measurement.from_dict(m) for m in recorded["measurements"]],
    )


def containment(bundle: PolicyBundle, judgement: Judgement, rollback_target_passes: bool) -> list[Verdict]:
    """The containments the policy permits for a harmful window (auto_rollback, auto_disable), in that order."""
    attributes = _attributes(
        judgement.model, judgement.version, judgement.risk_tier, judgement.decisions, judgement.attributes
    )
    context = {"rollback_target_passes": rollback_target_passes}
    return [v for v in (_ask(bundle, action, attributes, context) for action in (ROLLBACK, DISABLE)) if v.allowed]


def may_restore(bundle: PolicyBundle, judgement: Judgement, facts: dict[str, Any]) -> Verdict:
    """Whether automation may restore an earlier version (`facts`: the auto_rollback_target context)."""
    attributes = _attributes(
        judgement.model, judgement.version, judgement.risk_tier, judgement.decisions, judgement.attributes
    )
    return _ask(bundle, ROLLBACK_TARGET, attributes, facts)


def _attributes(model: str, version: int, risk_tier: str, decisions: int, figures: dict[str, float]) -> dict[str, Any]:
    """The MonitoringWindow's attributes: the window's identity, and the figures as Cedar decimals."""
    return {
        "model": model,
        "version": str(version),
        "risk_tier": risk_tier,
        "decisions": decisions,
        **{name: _decimal(name, value) for name, value in figures.items()},
    }


def _figure(name: str, value: Any) -> Any:
    """A per-feature figure as Cedar reads it: the FeatureDrift decimals as decimals (a recorded 0.0 comes back
    from canonical JSON as 0), the rest (method, rank) as they are."""
    return _decimal(name, float(value)) if name in _FEATURE_DECIMALS else value


def _entity(kind: str, identity: str, attributes: dict[str, Any]) -> dict:
    return {
        "uid": {"type": kind, "id": identity},
        "attrs": {k: _cedar(v) for k, v in attributes.items()},
        "parents": [{"type": "Model", "id": attributes["model"]}],
    }


def _entities(bundle: PolicyBundle, entities: list[dict]) -> cedarpy.Entities:
    try:
        return cedarpy.Entities.from_json_str(json.dumps(entities), bundle.schema)
    except ValueError as exc:
        raise PolicyError(
            f"{bundle.directory / SCHEMA_FILE}: the {entities[-1]['uid']['type']} built from the "
            f"measurements does not conform to the schema ({exc})"
        ) from None


def guard_containment(
    bundle: PolicyBundle, model: str, version: int, risk_tier: str, decisions: int, evidence: float
) -> tuple[Verdict, list[Verdict]]:
    """Whether the fairness guard's evidence calls for containment now (`contain` on a FairnessGuard), and the
    containments then permitted (no earlier version is judged on an incomplete window: no rollback passes)."""
    attributes = {**_attributes(model, version, risk_tier, decisions, {}), "evidence": _decimal("evidence", evidence)}
    contain = _ask(bundle, CONTAIN, attributes, {}, GUARD)
    if not contain.allowed:
        return contain, []
    context = {"rollback_target_passes": False}
    permitted = [_ask(bundle, action, attributes, context, GUARD) for action in (ROLLBACK, DISABLE)]
    return contain, [v for v in permitted if v.allowed]


def _ask(bundle: PolicyBundle, action: str, attributes: dict[str, Any], context: dict, kind: str = WINDOW) -> Verdict:
    identity = f"{attributes['model']}/{attributes['version']}"
    entities = _entities(bundle, [_PRINCIPAL_ENTITY, _entity(kind, identity, attributes)])
    request = {
        "principal": _PRINCIPAL,
        "action": {"type": "Action", "id": action},
        "resource": {"type": kind, "id": identity},
        "context": context,
    }
    result = cedarpy.is_authorized(request, bundle.policies, entities, schema=bundle.schema)
    return _verdict(bundle, action, identity, result, attributes)


def _verdict(
    bundle: PolicyBundle, action: str, identity: str, result, attributes: dict[str, Any], prefix: str = ""
) -> Verdict:
    if result.diagnostics.errors or result.decision == cedarpy.Decision.NoDecision:
        raise PolicyError(
            f"monitoring policy could not judge {action} for {identity}: " + "; ".join(result.diagnostics.errors)
        )
    fired = [bundle.rules[rule] for rule in bundle.rules if rule in set(result.diagnostics.reasons)]
    findings = tuple(
        Finding(rule.id, rule.message, tuple(prefix + c for c in _conditions(rule, attributes))) for rule in fired
    )
    return Verdict(action, result.allowed, findings)


def _conditions(rule, attributes: dict[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"{check.attribute} = {attributes[check.attribute]} (fires when {check.denies_when} {check.threshold})"
        for check in rule.checks
        if check.attribute in attributes
        and check.threshold is not None
        and check.applies_to(attributes["risk_tier"])
        and check.denies(attributes[check.attribute])
    )


def _decimal(name: str, value: float) -> Decimal:
    """Four digits, rounded towards alerting; infinities clipped far beyond any threshold."""
    if math.isnan(value):
        raise PolicyError(f"monitoring figure {name} is not a number")
    exact = Decimal(repr(float(value))) if abs(value) != float("inf") else _LIMIT.copy_sign(Decimal(value))
    exact = max(-_LIMIT, min(_LIMIT, exact))
    return exact.quantize(_QUANTUM, rounding=ROUND_FLOOR if name in _LOWER_IS_WORSE else ROUND_CEILING)


def _cedar(value: Any) -> Any:
    return {"__extn": {"fn": "decimal", "arg": str(value)}} if isinstance(value, Decimal) else value


def retrains(bundle: PolicyBundle, window: dict[str, Any], figures: dict[str, float]) -> bool:
    """Whether a window (its model, version, risk_tier and decisions) with these figures calls for retraining."""
    attributes = {**window, **{name: _decimal(name, value) for name, value in figures.items()}}
    return _ask(bundle, RETRAIN, attributes, {}).allowed


def what_would_fire(
    bundle: PolicyBundle, model: str, version: str, risk_tier: str, features: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """For a model card: the retrain and contain rules with their thresholds at this risk tier, and for each
    feature (FeatureDrift figures without a distance: method, importance, importance_rank) the smallest drift
    distance, among the thresholds the policy names, at which that feature alone calls for retraining (Cedar
    asked at each; None when none suffices)."""
    rules = [
        {
            "rule": rule.id,
            "action": action,
            "message": rule.message,
            "fires_when": [
                f"{c.attribute} {c.denies_when} {c.threshold}"
                for c in rule.checks
                if c.applies_to(risk_tier) and c.threshold is not None
            ],
        }
        for rule in bundle.rules.values()
        for action in rule.actions
        if action in (RETRAIN, CONTAIN)
    ]
    distances = sorted(
        {
            c.threshold
            for rule in bundle.rules.values()
            for c in rule.checks
            if c.attribute == "drift_distance" and c.applies_to(risk_tier) and c.threshold is not None
        }
    )
    window = {"model": model, "version": version, "risk_tier": risk_tier}
    fires_from: dict[str, float | None] = dict.fromkeys(features)
    for distance in distances:
        waiting = {
            name: {**figures, "drift_distance": float(distance)}
            for name, figures in features.items()
            if fires_from[name] is None
        }
        for name, verdict in ask_features(bundle, window, waiting).items():
            if verdict.allowed:
                fires_from[name] = float(distance)
    return {
        "policy_digest": bundle.digest,
        "risk_tier": risk_tier,
        "rules": rules,
        "features": [{"feature": name, **features[name], "fires_from": fires_from[name]} for name in features],
    }
