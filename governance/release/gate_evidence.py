"""Turning a version's reports into the release gate's evidence.

Fairness is judged over every gated protected attribute and every group other
than its reference: the gate sees the lowest upper bound and the highest lower
bound of the disparate-impact intervals (a group fails only when its whole
interval lies outside the band), and the largest equalized odds difference.
`context` tells the decision which group each figure came from, and how the
champion's AUC was obtained (`champion_basis`, governance.release.champion).
"""

from __future__ import annotations

from datetime import datetime

from governance.config import GovernedModel
from governance.policy.evidence import GateEvidence
from governance.timestamps import parse_utc, utc_now


def gate_evidence(
    model: GovernedModel,
    version: str,
    *,
    validation: dict,
    performance: dict,
    fairness: dict,
    explainability: dict,
    card: dict,
    champion_auc: float | None,
    requested_by: list[str],
    champion_basis: str | None = None,
    now: datetime | None = None,
) -> GateEvidence:
    intervals = _disparate_impact(fairness)
    odds = {name: fairness["attributes"][name] for name in fairness["gated_attributes"]}
    worst_odds = max(odds, key=lambda name: odds[name]["equalized_odds_difference"])
    widest_low = max(odds, key=lambda name: odds[name]["equalized_odds_difference_ci"][0] or 0.0)
    strongest, weighted = explainability["proxy_strength_max"], explainability["proxy_weighted_max"]
    taken_at = parse_utc(validation["snapshot"]["taken_at"])
    low_high = min(intervals, key=lambda i: i["high"])
    high_low = max(intervals, key=lambda i: i["low"])
    return GateEvidence(
        model=model.name,
        version=version,
        risk_tier=model.risk_tier,
        validation_passed=bool(validation["passed"]),
        auc=performance["auc"],
        ks=performance["ks"],
        champion_auc=champion_auc,
        di_ci_high_min=low_high["high"],
        di_ci_low_max=high_low["low"],
        di_point_min=min(i["point"] for i in intervals),
        di_point_max=max(i["point"] for i in intervals),
        equalized_odds_difference_max=odds[worst_odds]["equalized_odds_difference"],
        equalized_odds_ci_low_max=max(o["equalized_odds_difference_ci"][0] or 0.0 for o in odds.values()),
        proxy_strength_max=float(strongest["strength"]),
        proxy_weighted_max=float(weighted["weighted"]),
        card_complete=bool(card["complete"]),
        card_missing_sections=list(card["missing_sections"]),
        data_age_days=((now or utc_now()) - taken_at).days,
        trained_by=list(model.owners.data_scientists),
        requested_by=requested_by,
        context={
            "di_ci_high_min": _describe(low_high),
            "di_ci_low_max": _describe(high_low),
            "equalized_odds_difference_max": _describe_odds(worst_odds, odds[worst_odds]),
            "equalized_odds_ci_low_max": _describe_odds(widest_low, odds[widest_low]),
            "proxy_strength_max": f"feature {strongest['feature']} for {strongest['attribute']}: strength "
            f"{strongest['strength']:.2f}, importance rank {strongest['rank']} (if it encodes {strongest['attribute']}, "
            f"add {strongest['feature']} to the model's `exclude` in the config and train again)",
            "proxy_weighted_max": f"feature {weighted['feature']} for {weighted['attribute']}: strength "
            f"{weighted['strength']:.2f} x importance share {weighted['importance_share']:.2f}",
            "validation_passed": f"snapshot {validation['data_md5']}: {len(validation['failures'])} failed expectations",
            "data_age_days": f"snapshot taken {validation['snapshot']['taken_at']}",
            **({"champion_auc_drop": champion_basis} if champion_basis else {}),
        },
    )


def _disparate_impact(fairness: dict) -> list[dict]:
    found = []
    for name in fairness["gated_attributes"]:
        attribute = fairness["attributes"][name]
        for group, figures in attribute["groups"].items():
            low, high = figures.get("disparate_impact_ci") or (None, None)
            if "disparate_impact" not in figures or low is None or high is None:
                continue
            found.append(
                {
                    "attribute": name,
                    "group": group,
                    "reference": attribute["reference_group"],
                    "point": float(figures["disparate_impact"]),
                    "low": float(low),
                    "high": float(high),
                }
            )
    return found or [{"attribute": "none", "group": "none", "reference": "none", "point": 1.0, "low": 1.0, "high": 1.0}]


def _describe(interval: dict) -> str:
    """Where a disparate-impact figure came from, rounded as the model card rounds it."""
    return (
        f"{interval['attribute']}={interval['group']} vs {interval['reference']}: {interval['point']:.3f} "
        f"[{interval['low']:.3f}, {interval['high']:.3f}]"
    )


def _describe_odds(name: str, attribute: dict) -> str:
    """The attribute, its equalized odds difference with its interval, and the two groups whose true- or
    false-positive rates are furthest apart, rounded as the model card rounds them."""
    low, high = attribute["equalized_odds_difference_ci"]
    interval = "" if low is None else f" [{low:.3f}, {high:.3f}]"
    text = f"{name}: equalized odds difference {attribute['equalized_odds_difference']:.3f}{interval}"
    gaps = [
        gap
        for rate in ("true_positive_rate", "false_positive_rate")
        if (gap := _widest_gap(attribute, rate)) is not None
    ]
    if not gaps:
        return text
    spread, rate, (high_group, high_rate), (low_group, low_rate) = max(gaps)
    label = "true positive rate" if rate == "true_positive_rate" else "false positive rate"
    return f"{text}; {label} {high_group} {high_rate:.3f} vs {low_group} {low_rate:.3f}"


def _widest_gap(attribute: dict, rate: str) -> tuple | None:
    """(spread, rate, highest group and rate, lowest group and rate) among the groups the odds are judged on."""
    measured = [
        (group, attribute["groups"][group][rate])
        for group in attribute.get("odds_groups", attribute["groups"])
        if attribute["groups"][group][rate] is not None
    ]
    if len(measured) < 2:
        return None
    highest, lowest = max(measured, key=lambda g: g[1]), min(measured, key=lambda g: g[1])
    return highest[1] - lowest[1], rate, highest, lowest
