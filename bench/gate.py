"""Release-gate latency: a full gate decision vs a bare Cedar call, side by side.

    .venv/bin/python bench/gate.py [--runs N]

Full decision: `evaluate_gate` (evidence -> rounded Cedar entity, schema-checked
entities, Cedar evaluation, reasons with thresholds, digests), on evidence
that fails two rules, with a waiver for one of them (the slowest path: a second
Cedar call once the waived rule is set aside).
Baseline: one `cedarpy.is_authorized` with the same pre-parsed policies and a
pre-built entities handle (what Cedar alone costs).
Goal (issue 4): full decision under 50 ms at the 95th percentile.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import cedarpy

from governance.policy.bundle import PolicyBundle
from governance.policy.evidence import GateEvidence, candidate_attributes
from governance.policy.gate import Waiver, evaluate_gate
from governance.timestamps import utc_now

POLICIES = Path(__file__).resolve().parents[1] / "policies"
GOAL_P95_MS = 50.0


def evidence() -> GateEvidence:
    return GateEvidence(
        model="credit_scoring",
        version="7",
        risk_tier="high",
        validation_passed=True,
        auc=0.7512,
        ks=0.3711,
        champion_auc=0.7490,
        di_ci_high_min=0.70,
        di_ci_low_max=0.98,
        di_point_min=0.62,
        di_point_max=1.01,
        equalized_odds_difference_max=0.19,
        equalized_odds_ci_low_max=0.13,
        proxy_strength_max=0.11,
        proxy_weighted_max=0.04,
        card_complete=True,
        card_missing_sections=[],
        data_age_days=3,
        trained_by=["dana"],
        requested_by=["dana"],
        context={
            "di_ci_high_min": "sex=F vs M: 0.62 [0.55, 0.70]",
            "equalized_odds_ci_low_max": "sex: 0.19 [0.13, 0.25]",
        },
    )


def prebuilt_entities(bundle: PolicyBundle, gate_evidence: GateEvidence) -> cedarpy.Entities:
    """The baseline's entities, parsed once outside the timed loop."""
    attrs = {
        name: {"__extn": {"fn": "decimal", "arg": str(value)}} if isinstance(value, Decimal) else value
        for name, value in candidate_attributes(gate_evidence).items()
    }
    principal = {
        "uid": {"type": "System", "id": "release_gate"},
        "attrs": {"name": "release_gate"},
        "parents": [{"type": "Role", "id": "automation"}],
    }
    candidate = {
        "uid": {"type": "ReleaseCandidate", "id": "credit_scoring/7"},
        "attrs": attrs,
        "parents": [{"type": "Model", "id": "credit_scoring"}],
    }
    return cedarpy.Entities.from_json_str(json.dumps([principal, candidate]), bundle.schema)


def measure(fn, runs: int) -> list[float]:
    for _ in range(min(200, runs)):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(times: list[float], q: int) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    runs = parser.parse_args().runs

    bundle = PolicyBundle.load(POLICIES)
    now = utc_now()
    gate_evidence = evidence()
    waiver = Waiver(
        "credit_scoring",
        "7",
        "fairness.disparate_impact",
        now + timedelta(days=10),
        "carl",
        now,
        "remediation agreed",
        "ab" * 32,
    )
    decision = evaluate_gate(bundle, gate_evidence, [waiver], now=now)
    assert [d.rule for d in decision.denials] == ["fairness.disparate_impact", "fairness.equalized_odds"], decision

    entities = prebuilt_entities(bundle, gate_evidence)
    request = {
        "principal": {"type": "System", "id": "release_gate"},
        "action": {"type": "Action", "id": "promote"},
        "resource": {"type": "ReleaseCandidate", "id": "credit_scoring/7"},
        "context": {},
    }

    full = measure(lambda: evaluate_gate(bundle, gate_evidence, [waiver], now=now), runs)
    bare = measure(lambda: cedarpy.is_authorized(request, bundle.policies, entities), runs)

    rows = [("full gate decision", full), ("bare cedarpy call", bare)]
    print(f"release gate, {runs} decisions each, {len(bundle.rules)} rules (policy digest {bundle.digest[:12]})")
    print(f"{'':22}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    for name, times in rows:
        print(f"{name:22}{percentile(times, 50):10.3f}{percentile(times, 95):10.3f}{percentile(times, 99):10.3f}")
    ratio50 = percentile(full, 50) / percentile(bare, 50)
    ratio95 = percentile(full, 95) / percentile(bare, 95)
    print(f"{'ratio full/bare':22}{ratio50:10.1f}{ratio95:10.1f}")
    p95 = percentile(full, 95)
    verdict = "meets" if p95 < GOAL_P95_MS else "MISSES"
    print(f"goal: p95 < {GOAL_P95_MS:.0f} ms -> {p95:.3f} ms, {verdict} the goal")
    if p95 >= GOAL_P95_MS:
        sys.exit(1)


if __name__ == "__main__":
    main()
