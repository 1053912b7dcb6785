"""Decisions through the running API: scores, reasons, the decision log, validation, protected attributes."""

from __future__ import annotations

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client import REGISTRY

from governance import training
from governance.config import load_config
from governance.digests import digest_of
from governance.ledger import InclusionProof, Ledger
from governance.metrics.explainability import Explainer
from governance.serving.app import create_app
from governance.serving.champion import ChampionFollower
from governance.serving.decide import Application, DecisionMaker
from tests.helpers import RunningAPI
from tests.serving.conftest import LINEAR, MODEL, REASON_CODES, body, config_file

DECIDE = f"/models/{MODEL}/decisions"


def principal(attributions: pd.Series, outcome: str) -> list[str]:
    """The reasons an answer states: the features with the largest positive attributions, at most four, for a
    decline or a referral; none for an approval (it takes no adverse action)."""
    if outcome == "approve":
        return []
    return [f for f, v in attributions.sort_values(ascending=False, kind="stable").items() if v > 0][:4]


def test_decisions_carry_score_outcome_and_reasons_and_are_logged(deployed, client):
    model, rule = deployed.model, deployed.model.decisioning
    scores = pd.Series(
        training.score(deployed.pipelines[1], model, deployed.applications), index=deployed.applications.index
    )
    bands = pd.cut(scores, [0, rule.approve_below, rule.decline_at_or_above, 1], right=False)
    some_of_each = deployed.applications.groupby(bands, observed=True).head(12)
    # What the model card's explainer says about the same rows (scored here from the generator's own frame).
    attributions = Explainer(deployed.pipelines[1], model.feature_columns).attributions(some_of_each)
    outcomes = set()
    for index, row in some_of_each.iterrows():
        sent = body(row, model)
        response = client.post(DECIDE, json=sent)
        assert response.status_code == 200, response.text
        answer = response.json()
        features = {c: sent[c] for c in model.feature_columns}
        score = scores[index]
        assert answer["version"] == 1 and answer["model"] == MODEL and not answer["safe_state"]
        assert answer["score"] == pytest.approx(score, abs=1e-12)
        expected = (
            "approve" if score < rule.approve_below else "decline" if score >= rule.decline_at_or_above else "refer"
        )
        assert answer["outcome"] == expected
        outcomes.add(expected)
        assert [r["feature"] for r in answer["reasons"]] == principal(attributions.loc[index], expected)
        assert len(answer["reasons"]) <= 4
        assert not {r["feature"] for r in answer["reasons"]} & set(model.protected_columns)
        for reason in answer["reasons"]:
            assert reason["code"] == reason["feature"].upper()
            assert reason["text"] == REASON_CODES.get(reason["feature"], reason["text"])

        logged = deployed.decisions.get(answer["decision_id"])
        assert logged.version == 1 and logged.model == MODEL and logged.kill_switch is False
        assert logged.input_digest == digest_of(sent)
        assert logged.features == features
        assert logged.protected == {c: sent[c] for c in model.protected_columns}
        assert (logged.score, logged.outcome, logged.reasons) == (answer["score"], answer["outcome"], answer["reasons"])
    assert outcomes == {"approve", "refer", "decline"}


def test_an_application_whose_attributions_miss_its_score_is_referred_alone(deployed):
    """Its reasons would misstate the model, so it gets the safe state's answer; the rest of its batch is decided."""
    model = deployed.model
    follower = ChampionFollower(deployed.settings, model, deployed.registry, deployed.control)
    served = follower.refresh().served
    explain = served.explainer._shap.shap_values

    def second_row_misstated(rows):  # an explainer defect that shows on one application only
        values = np.array(explain(rows))
        values[1, 0] += 0.5
        return values

    served.explainer._shap.shap_values = second_row_misstated
    rows = deployed.applications.head(3)
    batch = [Application(features=body(row, model, protected=False), protected=None) for _, row in rows.iterrows()]
    counted = {"model": MODEL, "cause": "explanation_failed"}
    before = REGISTRY.get_sample_value("govern_serving_safe_state_total", counted) or 0
    answers = DecisionMaker(model, follower, deployed.control, deployed.decisions).decide(batch)

    referred = answers[1]
    assert (referred["outcome"], referred["score"], referred["version"], referred["reasons"]) == (
        "refer",
        None,
        None,
        [],
    )
    assert referred["safe_state"] and referred["safe_state_reason"].startswith(
        "v1 could not explain this application: its attributions miss its score by "
    )
    logged = deployed.decisions.get(referred["decision_id"])
    assert (logged.outcome, logged.safe_state_reason) == ("refer", referred["safe_state_reason"])
    assert deployed.decisions.get(answers[0]["decision_id"]).safe_state_reason is None
    assert REGISTRY.get_sample_value("govern_serving_safe_state_total", counted) == before + 1

    scores = training.score(deployed.pipelines[1], model, rows)
    attributions = Explainer(deployed.pipelines[1], model.feature_columns).attributions(rows)
    rule = model.decisioning
    for position in (0, 2):
        answer, score = answers[position], scores[position]
        assert not answer["safe_state"] and answer["score"] == pytest.approx(score, abs=1e-12)
        assert answer["outcome"] == (
            "approve" if score < rule.approve_below else "decline" if score >= rule.decline_at_or_above else "refer"
        )
        assert [r["feature"] for r in answer["reasons"]] == principal(attributions.iloc[position], answer["outcome"])


def test_a_version_that_fails_to_score_refers_the_batch_without_quoting_the_error(deployed):
    """The answer and the decision log say which version failed and how; the exception's text, which may quote
    an input value, stays in the server log."""
    model = deployed.model
    follower = ChampionFollower(deployed.settings, model, deployed.registry, deployed.control)
    served = follower.refresh().served

    def fails(rows):
        raise ValueError("could not convert string to float: 'applicant-secret'")

    served.explainer._shap.shap_values = fails
    rows = deployed.applications.head(2)
    batch = [Application(features=body(row, model, protected=False), protected=None) for _, row in rows.iterrows()]
    answers = DecisionMaker(model, follower, deployed.control, deployed.decisions).decide(batch)
    for answer in answers:
        assert (answer["outcome"], answer["score"], answer["safe_state_reason"]) == (
            "refer",
            None,
            f"v{served.version} failed to score (ValueError)",
        )
        assert deployed.decisions.get(answer["decision_id"]).safe_state_reason == answer["safe_state_reason"]


def test_a_linear_model_explains_against_its_training_snapshot_as_on_its_card(deployed, client):
    linear, pipeline = deployed.linear, deployed.linear_pipeline
    rows = deployed.applications.head(20)
    card = Explainer(pipeline, linear.feature_columns, deployed.linear_training_rows.head(200)).attributions(rows)
    scores = training.score(pipeline, linear, rows)
    for (index, row), score in zip(rows.iterrows(), scores):
        answer = client.post(f"/models/{LINEAR}/decisions", json=body(row, linear)).json()
        assert (answer["model"], answer["version"]) == (LINEAR, 1)
        assert answer["score"] == pytest.approx(score, abs=1e-12)
        assert [r["feature"] for r in answer["reasons"]] == principal(card.loc[index], answer["outcome"])


def test_configured_reason_text_and_four_reasons_at_most(deployed, client):
    model = deployed.model
    risky = deployed.applications.sort_values("debt_to_income", ascending=False).head(5)
    answers = [client.post(DECIDE, json=body(row, model)).json() for _, row in risky.iterrows()]
    reasons = [r for a in answers for r in a["reasons"]]
    assert max(len(a["reasons"]) for a in answers) == 4
    by_feature = {r["feature"]: r["text"] for r in reasons}
    assert by_feature["debt_to_income"] == REASON_CODES["debt_to_income"]


INVALID = [
    ("annual_income", lambda b: b.update(annual_income=-5.0)),
    ("annual_income", lambda b: b.update(annual_income="52000")),
    ("debt_to_income", lambda b: b.update(debt_to_income=9.5)),
    ("employment_type", lambda b: b.update(employment_type="astronaut")),
    ("loan_term_months", lambda b: b.update(loan_term_months=13)),
    ("open_accounts", lambda b: b.update(open_accounts=2.5)),
    ("existing_customer", lambda b: b.update(existing_customer=True)),
    ("delinquencies_2y", lambda b: b.pop("delinquencies_2y")),
    ("favourite_colour", lambda b: b.update(favourite_colour="blue")),
    ("age", lambda b: b.update(age=40)),  # excluded from the model's features
    ("sex", lambda b: b.update(sex="X")),
]


@pytest.mark.parametrize("field,spoil", INVALID, ids=[f"{f}-{i}" for i, (f, _) in enumerate(INVALID)])
def test_invalid_application_names_the_field_and_is_not_decided(deployed, client, field, spoil):
    sent = body(deployed.applications.iloc[0], deployed.model)
    spoil(sent)
    before = deployed.decisions.count()
    response = client.post(DECIDE, json=sent)
    assert response.status_code == 422
    assert [f["field"] for f in response.json()["fields"]] == [field]
    assert field in response.json()["error"]
    assert deployed.decisions.count() == before


@pytest.mark.parametrize("content", [b"[1, 2]", b"{not json", b""])
def test_a_body_that_is_not_an_application_is_refused(deployed, client, content):
    before = deployed.decisions.count()
    response = client.post(DECIDE, content=content, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "(body)"
    assert deployed.decisions.count() == before


def test_protected_attributes_are_refused_and_never_stored_when_not_collected(deployed, tmp_path):
    private = config_file(tmp_path / "private.yaml", collect_protected=False, with_linear=False)
    app = create_app(deployed.settings, load_config(private), poll_seconds=0.2)
    row = deployed.applications.iloc[1]
    with RunningAPI(app) as api, httpx.Client(base_url=api.url) as client:
        before = deployed.decisions.count()
        refused = client.post(DECIDE, json=body(row, deployed.model, protected=True))
        assert refused.status_code == 422
        assert {f["field"] for f in refused.json()["fields"]} == {"sex", "age_band"}
        assert "does not collect protected attributes" in refused.json()["error"]
        assert deployed.decisions.count() == before

        accepted = client.post(DECIDE, json=body(row, deployed.model, protected=False))
        assert accepted.status_code == 200
        logged = deployed.decisions.get(accepted.json()["decision_id"])
        assert logged.protected is None
        assert "sex" not in logged.features and "age_band" not in logged.features


def test_protected_attributes_are_optional_when_collected(deployed, client):
    accepted = client.post(DECIDE, json=body(deployed.applications.iloc[2], deployed.model, protected=False))
    assert accepted.status_code == 200
    assert deployed.decisions.get(accepted.json()["decision_id"]).protected is None


def test_status_health_metrics_and_unknown_model(client):
    status = client.get(f"/models/{MODEL}").json()
    assert status["served_version"] == 1 and status["champion_version"] == 1 and status["safe_state"] is False
    assert status["kill_switch"]["disabled"] is False
    assert client.get("/healthz").json()["models"][MODEL]["served_version"] == 1
    client.post(DECIDE, json={"nonsense": 1})
    metrics = client.get("/metrics").text
    assert f'govern_serving_decisions_total{{model="{MODEL}",outcome="approve"}}' in metrics
    assert f'govern_serving_errors_total{{kind="invalid_request",model="{MODEL}"}}' in metrics
    assert "govern_serving_request_seconds_bucket" in metrics
    assert f'govern_serving_served_version{{model="{MODEL}"}} 1.0' in metrics
    for response in (client.get("/models/mortgage"), client.post("/models/mortgage/decisions", json={})):
        assert response.status_code == 404 and "mortgage" in response.json()["detail"]


def test_ledger_entries_are_served_with_their_inclusion_proof(deployed, client):
    ledger = Ledger.for_settings(deployed.settings)
    first = ledger.append_record(actor="system:test", action="test.event", subject={"model": MODEL, "version": "1"})
    ledger.append_record(actor="system:test", action="test.event", subject={"model": MODEL, "version": "2"})
    found = client.get(f"/ledger/entries/{first.seq}")
    assert found.status_code == 200
    assert found.json()["entry"] == first.to_dict()
    proof = found.json()["inclusion_proof"]
    assert InclusionProof(**{**proof, "path": tuple(proof["path"])}).verify()
    assert proof["entry_hash"] == first.entry_hash
    for missing in (ledger.size() + 1, 0):
        assert client.get(f"/ledger/entries/{missing}").status_code == 404
