"""The thresholds a gate rule applies, read from the rule itself.

A gate decision quotes, for every rule that denied, the attribute measured and
the threshold the rule compared it with. Those come from the policy's JSON form
(Cedar's EST), never from a copy in code or in an annotation, so changing a
number in a .cedar file changes the decision and its explanation together.

A rule is read as a set of `Check`s: comparisons of a `resource` attribute with
a literal, each guarded by the risk tier it sits under
(`resource.risk_tier == "high" && ...`). Other sub-expressions (`has` tests,
set membership) decide too, but quote no threshold.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

Literal = Decimal | int | bool | str

_METHODS = {"lessThan": "<", "lessThanOrEqual": "<=", "greaterThan": ">", "greaterThanOrEqual": ">="}
_COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
_NEGATED = {
    "<": ">=",
    "<=": ">",
    ">": "<=",
    ">=": "<",
    "==": "!=",
    "!=": "==",
    "empty": "not empty",
    "not empty": "empty",
}
_MIRRORED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_EVALUATE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "empty": lambda value, _: len(value) == 0,
    "not empty": lambda value, _: len(value) > 0,
}


@dataclass(frozen=True)
class Check:
    """One comparison of a rule: the rule denies when `attribute <denies_when> threshold` holds."""

    attribute: str
    denies_when: str
    threshold: Literal | None
    tier: str | None  # the risk tier whose guard it sits under; None: every tier

    def denies(self, value: Any) -> bool:
        return _EVALUATE[self.denies_when](value, self.threshold)

    def applies_to(self, tier: str) -> bool:
        return self.tier in (None, tier)

    @property
    def requirement(self) -> str:
        """What passing takes, e.g. `auc >= 0.7000` or `validation_passed is true`."""
        passes_when = _NEGATED[self.denies_when]
        if isinstance(self.threshold, bool):
            return f"{self.attribute} is {str(self.threshold_json()).lower()}"
        if self.threshold is None:
            return f"{self.attribute} is {passes_when}"
        return f"{self.attribute} {passes_when} {self.threshold}"

    def threshold_json(self) -> float | int | bool | str | None:
        """The threshold as JSON; for a true/false attribute, the value that passes."""
        if isinstance(self.threshold, bool):
            return self.threshold if _NEGATED[self.denies_when] == "==" else not self.threshold
        return float(self.threshold) if isinstance(self.threshold, Decimal) else self.threshold


def rule_checks(policy: dict) -> tuple[Check, ...]:
    """Every threshold check in one policy of Cedar's JSON (EST) form."""
    checks: list[Check] = []
    for condition in policy.get("conditions", []):
        _collect(condition["body"], negated=condition["kind"] == "unless", tier=None, out=checks)
    return tuple(checks)


def _collect(node: dict, *, negated: bool, tier: str | None, out: list[Check]) -> None:
    ((kind, body),) = node.items()
    if kind in ("&&", "||"):
        guard = _tier_guard(body["left"]) if kind == "&&" and not negated else None
        if guard is not None:
            _collect(body["right"], negated=negated, tier=guard, out=out)
            return
        _collect(body["left"], negated=negated, tier=tier, out=out)
        _collect(body["right"], negated=negated, tier=tier, out=out)
    elif kind == "!":
        _collect(body["arg"], negated=not negated, tier=tier, out=out)
    elif kind in _METHODS:
        _compare(body[0], body[1], _METHODS[kind], negated, tier, out)
    elif kind in _COMPARISONS:
        _compare(body["left"], body["right"], kind, negated, tier, out)
    elif kind == "isEmpty" and (attribute := _resource_attribute(body["arg"])):
        out.append(Check(attribute, "not empty" if negated else "empty", None, tier))
    elif kind == "." and (attribute := _resource_attribute(node)):
        out.append(Check(attribute, "==", not negated, tier))


def _compare(left: dict, right: dict, op: str, negated: bool, tier: str | None, out: list[Check]) -> None:
    attribute, literal = _resource_attribute(left), _literal(right)
    if attribute is None:
        attribute, literal, op = _resource_attribute(right), _literal(left), _MIRRORED[op]
    if attribute is not None and literal is not None:
        out.append(Check(attribute, _NEGATED[op] if negated else op, literal, tier))


def _tier_guard(node: dict) -> str | None:
    """`"high"` for `resource.risk_tier == "high"`, else None."""
    body = node.get("==")
    if body is None:
        return None
    for attr_side, value_side in ((body["left"], body["right"]), (body["right"], body["left"])):
        tier = _literal(value_side)
        if _resource_attribute(attr_side) == "risk_tier" and isinstance(tier, str):
            return tier
    return None


def _resource_attribute(node: dict) -> str | None:
    access = node.get(".")
    if access and access["left"] == {"Var": "resource"}:
        return access["attr"]
    return None


def _literal(node: dict) -> Literal | None:
    if "Value" in node and isinstance(node["Value"], (bool, int, str)):
        return node["Value"]
    call = node.get("decimal")
    if call and "Value" in call[0]:
        return Decimal(call[0]["Value"])
    return None
