"""A model version's evidence, as the release gate reads it.

The release_gate asset builds a `GateEvidence` from the version's reports;
`candidate_attributes` turns it into the attributes of the Cedar
`ReleaseCandidate` entity (policies/schema.cedarschema).

Cedar decimals carry four fractional digits, so every metric is rounded, and
always towards failing: a metric where higher is better is rounded down, one
where lower is better is rounded up. A value that fails a threshold of four
digits or fewer therefore never passes because of rounding (AUC 0.74996 stays
below a 0.75 floor). Floats are read through their shortest decimal repr, so
0.7 is 0.7000 and not 0.6999.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from governance.errors import GovernanceError

RISK_TIERS = ("high", "medium", "low")
_QUANTUM = Decimal("0.0001")
# Far beyond any threshold; keeps an infinite ratio inside Cedar's decimal range.
_DECIMAL_LIMIT = Decimal(1_000_000_000)

# Which way each metric is rounded to Cedar's four digits: towards failing.
_HIGHER_IS_BETTER = ("auc", "ks", "di_ci_high_min", "di_point_min")
_LOWER_IS_BETTER = (
    "di_ci_low_max",
    "di_point_max",
    "equalized_odds_difference_max",
    "equalized_odds_ci_low_max",
    "proxy_strength_max",
    "proxy_weighted_max",
)


class EvidenceError(GovernanceError):
    """Gate evidence is malformed. The message names the model version and the field."""


@dataclass(frozen=True)
class GateEvidence:
    """What the release gate knows about one model version (see the module docstring).

    `context` explains, per attribute, where a value came from
    (e.g. {"di_ci_high_min": "sex=F vs M: 0.62 [0.55, 0.70]"}); decisions quote it.
    """

    model: str
    version: str
    risk_tier: str
    validation_passed: bool
    auc: float
    ks: float
    champion_auc: float | None
    di_ci_high_min: float
    di_ci_low_max: float
    di_point_min: float
    di_point_max: float
    equalized_odds_difference_max: float
    equalized_odds_ci_low_max: float
    proxy_strength_max: float  # the strongest proxy of a protected attribute among every feature
    proxy_weighted_max: float  # the highest proxy strength times importance share among every feature
    card_complete: bool
    card_missing_sections: list[str]
    data_age_days: int
    trained_by: list[str]
    requested_by: list[str]
    context: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = _problems(self)
        if problems:
            raise EvidenceError(f"gate evidence for {self.model} version {self.version}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def champion_auc_drop(self) -> Decimal | None:
        """Champion AUC minus this AUC, exactly (decimal arithmetic on the reported values)."""
        if self.champion_auc is None:
            return None
        return _exact(self.champion_auc) - _exact(self.auc)


def candidate_attributes(evidence: GateEvidence) -> dict[str, Any]:
    """The ReleaseCandidate's attributes as Python values (Decimal for Cedar decimals)."""
    attributes: dict[str, Any] = {
        "model": evidence.model,
        "version": evidence.version,
        "risk_tier": evidence.risk_tier,
        "validation_passed": evidence.validation_passed,
        "card_complete": evidence.card_complete,
        "card_missing_sections": list(evidence.card_missing_sections),
        "data_age_days": evidence.data_age_days,
        "trained_by": list(evidence.trained_by),
        "requested_by": list(evidence.requested_by),
    }
    for name in _HIGHER_IS_BETTER:
        attributes[name] = _to_quantum(_exact(getattr(evidence, name)), ROUND_FLOOR)
    for name in _LOWER_IS_BETTER:
        attributes[name] = _to_quantum(_exact(getattr(evidence, name)), ROUND_CEILING)
    drop = evidence.champion_auc_drop
    if drop is not None:
        attributes["champion_auc_drop"] = _to_quantum(drop, ROUND_CEILING)
    return attributes


def measured_value(evidence: GateEvidence, attribute: str) -> Any:
    """The value a report gave for `attribute` (before rounding), for decisions to quote."""
    if attribute == "champion_auc_drop":
        drop = evidence.champion_auc_drop
        return None if drop is None else float(drop)
    return getattr(evidence, attribute, None)


def _exact(value: float) -> Decimal:
    if math.isinf(value):
        return _DECIMAL_LIMIT if value > 0 else -_DECIMAL_LIMIT
    return Decimal(repr(float(value)))


def _to_quantum(value: Decimal, rounding: str) -> Decimal:
    return max(-_DECIMAL_LIMIT, min(_DECIMAL_LIMIT, value)).quantize(_QUANTUM, rounding=rounding)


_FLOATS = (*_HIGHER_IS_BETTER, *_LOWER_IS_BETTER)
_BOOLS = ("validation_passed", "card_complete")
_NAME_LISTS = ("card_missing_sections", "trained_by", "requested_by")


def _problems(evidence: GateEvidence) -> list[str]:
    problems = []
    for name in ("model", "version"):
        if not isinstance(getattr(evidence, name), str) or not getattr(evidence, name):
            problems.append(f"field '{name}' must be a non-empty string")
    if evidence.risk_tier not in RISK_TIERS:
        problems.append(f"field 'risk_tier' is {evidence.risk_tier!r}, expected one of {', '.join(RISK_TIERS)}")
    numbers = {name: getattr(evidence, name) for name in _FLOATS}
    if evidence.champion_auc is not None:
        numbers["champion_auc"] = evidence.champion_auc
    for name, value in numbers.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            problems.append(f"field '{name}' must be a number, got {value!r}")
    for name in _BOOLS:
        if not isinstance(getattr(evidence, name), bool):
            problems.append(f"field '{name}' must be true or false, got {getattr(evidence, name)!r}")
    if isinstance(evidence.data_age_days, bool) or not isinstance(evidence.data_age_days, int):
        problems.append(f"field 'data_age_days' must be a whole number of days, got {evidence.data_age_days!r}")
    for name in _NAME_LISTS:
        value = getattr(evidence, name)
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            problems.append(f"field '{name}' must be a list of strings, got {value!r}")
    if not isinstance(evidence.context, dict) or not all(isinstance(v, str) for v in evidence.context.values()):
        problems.append("field 'context' must map attribute names to explanations (strings)")
    return problems
