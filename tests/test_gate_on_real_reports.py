"""The release gate on real reports produced by the graph.

Every numeric rule is tried with its high-tier threshold moved to the value the
graph measured (at), one Cedar quantum (0.0001) stricter (just below passing)
and one quantum looser (just above): only the policy file changes, never code,
and each decision carries that bundle's digest. Then the generator's bias knob
makes a version the fairness rules deny, and a waiver granted by a compliance
manager is honoured by the gate and shown on the card.
"""

import json
import re
import shutil
from dataclasses import replace
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path

import pytest
from dagster import AssetKey
from typer.testing import CliRunner

from governance import events
from governance.data.validation import load_validation
from governance.policy.bundle import PolicyBundle
from governance.policy.gate import evaluate_gate
from governance.release import approvals
from governance.release.approvals import ApprovalRefused, decide, valid_approval
from governance.release.deployment import DeploymentRefused, rollback
from governance.release.gate_evidence import gate_evidence
from governance.release.outcome import candidate_outcome
from governance.release.requests import request_candidate
from governance.timestamps import parse_utc, utc_now
from governance.trust.demo import demo_key_path, demo_principals
from governance.trust.keys import load_private_key
from programs.cli import app
from tests.helpers import REPO, SMALL_CONFIG, Lifecycle

pytestmark = pytest.mark.slow
MODEL = "credit_scoring"
QUANTUM = Decimal("0.0001")
BIASED = {"ops": {"credit_scoring__applications": {"config": {"bias": 0.6}}}}

# rule id, policy file, evidence attribute, comparison the rule denies on
NUMERIC_RULES = [
    ("performance.auc_floor", "performance.cedar", "auc", "lessThan"),
    ("performance.ks_floor", "performance.cedar", "ks", "lessThan"),
    ("fairness.disparate_impact", "fairness.cedar", "di_ci_high_min", "lessThan"),
    ("fairness.equalized_odds", "fairness.cedar", "equalized_odds_ci_low_max", "greaterThan"),
    ("explainability.protected_proxy", "explainability.cedar", "proxy_weighted_max", "greaterThanOrEqual"),
    ("explainability.encoded_attribute", "explainability.cedar", "proxy_strength_max", "greaterThanOrEqual"),
]


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    life = Lifecycle(tmp_path_factory.mktemp("gate") / "govern", SMALL_CONFIG)
    demo_principals(life.settings)
    fair = life.candidate(requested_by="dana")
    job = life.defs.resolve_job_def("credit_scoring_candidate")
    from jobs.candidates import next_candidate_key

    biased_key = next_candidate_key(life.instance, life.registry, life.config.model(MODEL))
    request_candidate(life.services, MODEL, biased_key, "dana", load_private_key(demo_key_path(life.settings, "dana")))
    biased = job.execute_in_process(
        instance=life.instance, partition_key=biased_key, run_config=BIASED, raise_on_error=False
    )
    life.runs = {"fair": fair, "biased": (biased_key, biased)}
    return life


def real_evidence(life, which: str):
    key, result = life.runs[which]
    out = {name: result.output_for_node(f"{MODEL}__{name}") for name in ("trained_model", "model_card")}

    def load(name):  # as the reports IO manager stored it
        return json.loads((life.settings.model_dir(MODEL, key) / f"{name.removesuffix('_report')}.json").read_bytes())

    return gate_evidence(
        life.config.model(MODEL),
        key,
        validation=load_validation(life.settings, MODEL, out["trained_model"]["data_md5"]),
        performance=load("performance_report"),
        fairness=load("fairness_report"),
        explainability=load("explainability_report"),
        card=out["model_card"],
        champion_auc=None,
        requested_by=["dana"],
    )


def with_threshold(tmp_path: Path, file: str, attribute: str, value: Decimal) -> PolicyBundle:
    """A copy of the policies with the high tier's threshold for `attribute` set to `value`."""
    target = tmp_path / f"policies-{attribute}-{value}"
    shutil.copytree(REPO / "policies", target)
    path = target / file
    pattern = re.compile(rf'(risk_tier == "high" &&\s*\(?\s*resource\.{attribute}\.\w+\(decimal\(")([0-9.]+)')
    text, count = pattern.subn(lambda m: m.group(1) + f"{value:.4f}", path.read_text(), count=1)
    assert count == 1, f"no high-tier threshold for {attribute} in {file}"
    path.write_text(text)
    return PolicyBundle.load(target)


@pytest.mark.parametrize("rule, file, attribute, comparison", NUMERIC_RULES)
def test_each_rule_at_just_below_and_just_above_its_measured_value(life, tmp_path, rule, file, attribute, comparison):
    evidence = real_evidence(life, "fair")
    measured = Decimal(repr(getattr(evidence, attribute)))
    higher_is_better = comparison == "lessThan"
    at = measured.quantize(QUANTUM, rounding=ROUND_FLOOR if higher_is_better else ROUND_CEILING)
    stricter, looser = (at + QUANTUM, at - QUANTUM) if higher_is_better else (at - QUANTUM, at + QUANTUM)
    at_denies = comparison == "greaterThanOrEqual"  # ">= T denies" fails exactly at T
    digests = set()
    for threshold, denied in ((at, at_denies), (stricter, True), (looser, False)):
        bundle = with_threshold(tmp_path, file, attribute, threshold)
        decision = evaluate_gate(bundle, evidence)
        denied_rules = {d.rule for d in decision.denials}
        assert (rule in denied_rules) is denied, (rule, threshold, measured, decision.reasons())
        if denied:
            finding = next(d for d in decision.denials if d.rule == rule).findings[0]
            assert finding.attribute == attribute and Decimal(str(finding.threshold)) == threshold
        assert decision.policy_digest == bundle.digest
        digests.add(decision.policy_digest)
    assert len(digests) == 3


def test_data_age_and_documentation_rules_on_real_evidence(life):
    bundle = PolicyBundle.load(REPO / "policies")
    evidence = real_evidence(life, "fair")
    assert evaluate_gate(bundle, evidence).allowed
    old = evaluate_gate(bundle, replace(evidence, data_age_days=366))
    assert [d.rule for d in old.denials] == ["data_quality.data_age"]
    incomplete = evaluate_gate(bundle, replace(evidence, card_complete=False, card_missing_sections=["limitations"]))
    assert "limitations" in incomplete.reasons()[0]


def test_the_bias_knob_fails_the_fairness_gate_with_reasons(life):
    key, result = life.runs["biased"]
    assert result.success  # a denial is the gate's outcome for the version, not a failed run
    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "policy_decision"]
    assert (check.passed, check.partition) == (False, key)
    assert "fairness.disparate_impact" in check.metadata["denied_rules"].value
    decision = json.loads((life.settings.model_dir(MODEL, key) / "gate_decision.json").read_bytes())
    denied = {d["rule"]: d for d in decision["denials"]}
    assert "fairness.disparate_impact" in denied
    finding = denied["fairness.disparate_impact"]["findings"][0]
    assert finding["measured"] < 0.8 and "sex=F vs M" in finding["detail"]
    assert not life.materialized(MODEL, "approval_request", key)
    fair_key, fair = life.runs["fair"]
    assert fair.success and life.materialized(MODEL, "approval_request", fair_key)


def test_status_and_the_train_outcome_give_a_denied_versions_reasons(life):
    key, _ = life.runs["biased"]
    outcome = candidate_outcome(life.services, MODEL, key)
    assert outcome["outcome"] == "denied" and outcome["requested_by"] == ["dana"]
    (reason,) = [r for r in outcome["reasons"] if r.startswith("fairness.disparate_impact: ")]
    assert "sex=F vs M" in reason and "govern waive" in outcome["next"]
    base = ["--home", str(life.settings.home), "--config", str(SMALL_CONFIG)]
    shown = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")}).invoke(app, [*base, "status"]).output
    assert f"  {key}  requested by dana; gate DENIED\n" in shown and f"    - {reason}\n" in shown
    fair_key, _ = life.runs["fair"]
    pending = candidate_outcome(life.services, MODEL, fair_key)
    assert pending["outcome"] == "pending approval" and pending["may_approve"] == ["ravi", "rhea"]
    assert f"govern approve {MODEL} {fair_key} --as ravi --evidence {pending['evidence_pack']}" in pending["next"]


def test_a_changed_threshold_changes_the_graphs_decision_with_a_new_digest(life, tmp_path):
    fair_key, _ = life.runs["fair"]
    strict = with_threshold(tmp_path, "performance.cedar", "auc", Decimal("0.9900"))
    stricter = Lifecycle(life.settings.home, SMALL_CONFIG, policies=strict.directory)
    result = stricter.defs.resolve_job_def("credit_scoring_candidate").execute_in_process(
        instance=stricter.instance,
        partition_key=fair_key,
        raise_on_error=False,
        tags={"governance/requested_by": "dana"},
    )
    assert result.success and not result.asset_materializations_for_node(f"{MODEL}__approval_request")
    gate = stricter.services.ledger.latest(events.GateDecided, model=MODEL, version=fair_key)
    assert gate.policy == strict.digest != PolicyBundle.load(REPO / "policies").digest
    assert gate.allowed is False and [d["rule"] for d in gate.decision["denials"]] == ["performance.auc_floor"]


def test_a_waiver_is_honoured_by_the_gate_and_shown_on_the_card(life, monkeypatch):
    key, _ = life.runs["biased"]
    decision = json.loads((life.settings.model_dir(MODEL, key) / "gate_decision.json").read_bytes())
    rules = [d["rule"] for d in decision["denials"]]
    until = (utc_now() + timedelta(days=10)).date().isoformat()
    runner = CliRunner(env={"GOVERN_POLICIES": str(REPO / "policies")})
    base = ["--home", str(life.settings.home), "--config", str(SMALL_CONFIG)]
    for rule in rules:
        waived = runner.invoke(
            app,
            base
            + [
                "waive",
                MODEL,
                key,
                "--rule",
                rule,
                "--until",
                until,
                "--reason",
                "remediation plan FR-12 agreed with the regulator",
                "--as",
                "carl",
            ],
        )
        assert waived.exit_code == 0, waived.output
    selfish = runner.invoke(
        app, base + ["waive", MODEL, key, "--rule", rules[0], "--until", until, "--reason", "mine", "--as", "dana"]
    )
    assert selfish.exit_code != 0
    # Only the gate and what follows it run again (as a user re-materializes them in the UI): the card, written
    # before any waiver existed, is published again listing every waiver the gate honoured, before it is sealed.
    card_before = life.services.ledger.latest(events.CardPublished, model=MODEL, version=key)
    result = life.defs.resolve_job_def("credit_scoring_candidate").execute_in_process(
        instance=life.instance,
        partition_key=key,
        tags={"governance/requested_by": "dana"},
        asset_selection=[AssetKey([MODEL, "release_gate"]), AssetKey([MODEL, "approval_request"])],
    )
    assert result.success
    gate = json.loads((life.settings.model_dir(MODEL, key) / "gate_decision.json").read_bytes())
    assert gate["allowed"] and gate["valid_until"] and all(d["waiver"]["granted_by"] == "carl" for d in gate["denials"])
    card = (life.settings.model_dir(MODEL, key) / "model_card.md").read_text()
    assert "No waiver applies" not in card
    for rule in rules:
        assert f"| {rule} | carl | remediation plan FR-12 agreed with the regulator |" in card
    card_after = life.services.ledger.latest(events.CardPublished, model=MODEL, version=key)
    assert card_after.seq > card_before.seq and card_after.waivers
    pack = Path(result.output_for_node(f"{MODEL}__approval_request")["pack_path"])
    assert (pack / "model_card.md").read_text() == card  # the sealed card is the one that lists them

    # The waived pass lasts as long as the waiver: after it, the sealed pack can be neither approved nor released.
    ravi = load_private_key(life.settings.keys_dir / "ravi.key")
    after = parse_utc(gate["valid_until"]) + timedelta(seconds=1)
    with pytest.raises(ApprovalRefused, match="the gate passed on a waiver that ended at"):
        decide(life.services, MODEL, key, "approve", "ravi", ravi, now=after)
    decide(life.services, MODEL, key, "approve", "ravi", ravi)
    assert valid_approval(life.services, MODEL, key, "test")[0].principal == "ravi"
    with pytest.raises(ApprovalRefused, match="the gate passed on a waiver that ended at"):
        valid_approval(life.services, MODEL, key, "test", now=after)
    status = ["status", "--json"]
    assert json.loads(runner.invoke(app, base + status).output)[0]["awaiting_release"] == [
        {"version": key, "approved_by": "ravi"}
    ]
    with monkeypatch.context() as later:  # govern status, once the waiver has ended: says why it will not release
        later.setattr(approvals, "utc_now", lambda: after)
        waiting = json.loads(runner.invoke(app, base + status).output)[0]["awaiting_release"]
        assert "the gate passed on a waiver that ended at" in waiting[0]["cannot_be_released"]
        assert "cannot be released: the gate passed on a waiver" in runner.invoke(app, base + ["status"]).output

    # Deployed on the waiver, then replaced: once the waiver has ended, no rollback brings it back.
    release = life.defs.resolve_job_def("credit_scoring_release")
    assert release.execute_in_process(instance=life.instance, partition_key=key).success
    fair_key, _ = life.runs["fair"]
    decide(life.services, MODEL, fair_key, "approve", "ravi", ravi)
    assert release.execute_in_process(instance=life.instance, partition_key=fair_key).success
    paul = load_private_key(life.settings.keys_dir / "paul.key")
    monkeypatch.setattr(approvals, "utc_now", lambda: after)
    with pytest.raises(
        DeploymentRefused, match=f"{key}: the gate passed on a waiver that ended at .*a rollback does not bring it back"
    ):
        rollback(life.services, MODEL, "paul", paul, "fair version suspect", to_version=int(key.rsplit("v", 1)[1]))
    assert life.services.registry.champion(MODEL) == int(fair_key.rsplit("v", 1)[1])
