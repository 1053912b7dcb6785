"""A low-importance feature that exactly encodes sex (a code for sex and marital status, as in real credit
data): the proxy screen flags it whatever its rank, the release gate denies naming it and the attribute, and
no decision gives it as a reason (the next eligible reason is given, and the withheld one is counted)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance import events
from governance.control import ControlStore
from governance.data.generator import CONTRACT, generate_applications
from governance.data.source import read_dataset
from governance.decisions import DecisionLog
from governance.digests import file_sha256
from governance.ledger import Ledger
from governance.metrics.reasons import ReasonCodes
from governance.release.evidence_pack import EXPLAINABILITY_FILE, EvidencePack, seal
from governance.serving.champion import ChampionFollower, ServingError, ServingState, load_version
from governance.serving.decide import Application, DecisionMaker
from tests.helpers import small_model, write_config

pytestmark = pytest.mark.slow
MODEL = "credit_status"
MARITAL = ["single", "married", "divorced"]
PROXY = "personal_status"


def applications_with_personal_status(rows: int = 6000) -> "pd.DataFrame":
    """Generator rows plus `personal_status` = sex and marital status in one code; being divorced raises the
    recorded default rate a little, so the model uses the column, but not much."""
    frame = generate_applications(rows, seed=7)
    rng = np.random.default_rng(3)
    marital = rng.choice(len(MARITAL), rows, p=[0.4, 0.45, 0.15])
    frame[PROXY] = [f"{sex}_{MARITAL[m]}" for sex, m in zip(frame["sex"].astype(str), marital)]
    flip = (marital == 2) & (rng.random(rows) < 0.08)
    frame.loc[flip, "default"] = 1
    return frame


@pytest.fixture(scope="module")
def denied(tmp_path_factory):
    from tests.helpers import Lifecycle

    root = tmp_path_factory.mktemp("proxy")
    data = root / "applications.csv"
    applications_with_personal_status().to_csv(data, index=False)
    columns = {**CONTRACT, PROXY: {"kind": "category", "values": [f"{s}_{m}" for s in "FM" for m in MARITAL]}}
    entry = small_model(source={"file": {"path": str(data)}}, columns=columns)
    life = Lifecycle(root / "govern", write_config(root / "governance.yaml", {MODEL: entry}))
    key, result = life.candidate(MODEL, requested_by="dana")
    return life, key, result


def test_the_screen_flags_a_low_importance_exact_proxy(denied):
    life, key, result = denied
    report = json.loads((life.settings.model_dir(MODEL, key) / "explainability.json").read_bytes())
    row = next(r for r in report["proxy_screen"] if r["feature"] == PROXY)
    assert row["attribute"] == "sex" and row["strength"] == 1.0
    assert row["rank"] > 5 and row["weighted"] < 0.5  # outside the old top five, and barely used
    assert row["flagged"] and row["why"] == "encodes"
    assert [f["feature"] for f in report["proxy_flags"]] == [PROXY]
    card = Path(result.output_for_node(f"{MODEL}__model_card")["markdown_path"]).read_text()
    assert f"| {PROXY} | sex | 1.00 |" in card and "yes: encodes it" in card
    assert f"or a flagged proxy ({PROXY}) as a principal reason" in card
    withheld = report["withheld_reasons"]
    assert withheld["applications"] > 0 and withheld["by_feature"] == {PROXY: withheld["applications"]}
    assert withheld["reasons"] == withheld["applications"]  # the one withheld feature, once per application
    assert (
        f"On the {report['sample_rows']} explained test applications, {withheld['adverse']} would be declined or "
        f"referred; {withheld['applications']} of them would have given a withheld feature as a principal reason "
        f"({PROXY}: {withheld['applications']}); {withheld['reasons']} reasons are withheld in all"
    ) in card


def test_the_gate_denies_naming_the_feature_and_the_attribute(denied):
    life, key, result = denied
    assert result.success  # a denial is the gate's outcome, not a failed run
    decision = json.loads((life.settings.model_dir(MODEL, key) / "gate_decision.json").read_bytes())
    assert not decision["allowed"]
    denial = next(d for d in decision["denials"] if d["rule"] == "explainability.encoded_attribute")
    (finding,) = denial["findings"]
    assert finding["attribute"] == "proxy_strength_max" and finding["measured"] == 1.0
    assert f"feature {PROXY} for sex" in finding["detail"]
    assert f"add {PROXY} to the model's `exclude`" in finding["detail"]  # the denial says what to do
    assert not life.materialized(MODEL, "approval_request", key)


def _served(life, key: str, result, pack: EvidencePack):
    trained = result.output_for_node(f"{MODEL}__trained_model")
    model = life.config.model(MODEL)
    return load_version(
        life.settings, life.registry, model, trained["version"], trained["artifact_sha256"], pack.digest
    )


def _pack(life, key: str) -> EvidencePack:
    """A pack sealing the version's explainability report, as the release gate seals it in an approved one (the
    gate denied this version, so no pack of its own exists)."""
    report = life.settings.model_dir(MODEL, key) / EXPLAINABILITY_FILE
    facts = {"data_md5": life.registry.version(MODEL, int(key.rsplit("v", 1)[1])).tags["governance.data_md5"]}
    return seal(life.settings.model_dir(MODEL, key) / "evidence", MODEL, key, {EXPLAINABILITY_FILE: report}, facts)


def _decide(life, result, served, rows: pd.DataFrame) -> tuple[list[dict], DecisionLog]:
    """The scoring API's decisions on `rows` by the served version, logged, and the log."""
    trained = result.output_for_node(f"{MODEL}__trained_model")
    model = life.config.model(MODEL)
    follower = ChampionFollower(life.settings, model, life.registry, ControlStore.for_settings(life.settings))
    follower.state = ServingState(trained["version"], served, None)
    follower.switched_off_by_record = None  # driven directly: no governed deployment, the kill switch never on
    log = DecisionLog.for_settings(life.settings)
    maker = DecisionMaker(model, follower, ControlStore.for_settings(life.settings), log)
    applications = [Application({c: row[c] for c in model.feature_columns}, None) for row in rows.to_dict("records")]
    return maker.decide(applications), log


def test_no_decision_gives_the_proxy_as_a_reason(denied):
    life, key, result = denied
    model = life.config.model(MODEL)
    served = _served(life, key, result, _pack(life, key))
    rows = applications_with_personal_status(3000).sample(600, random_state=1)
    attributions = served.explainer.attributions(rows)
    unscreened = ReasonCodes(model).principal(attributions)  # what the reasons were before the screen
    would_give = [i for i, reasons in enumerate(unscreened) if PROXY in {r["feature"] for r in reasons.given}]
    assert would_give, "the constructed proxy must be among some rows' principal reasons for this test to bite"

    answers, log = _decide(life, result, served, rows)
    assert all(PROXY not in {r["feature"] for r in answer["reasons"]} for answer in answers)
    assert "reasons_withheld" not in answers[0]  # logged, not sent
    next_given = 0
    for i in would_give:
        given = [r["feature"] for r in answers[i]["reasons"]]
        kept = [r["feature"] for r in unscreened[i].given if r["feature"] != PROXY]
        if answers[i]["outcome"] == "approve":
            kept = []  # an approval states no adverse-action reasons
        assert given[: len(kept)] == kept  # the others keep their order; the next eligible reason moves up
        next_given += len(given) > len(kept)
        assert log.get(answers[i]["decision_id"]).reasons_withheld == 1
    assert next_given, "some declined row should get its next eligible reason in the proxy's place"
    assert sum(log.get(a["decision_id"]).reasons_withheld for a in answers) == len(would_give)


def test_the_reports_count_is_what_the_decision_log_records_on_the_same_applications(denied):
    """Decided by the scoring API, the test rows the report explained are logged with the withheld reasons the
    report (and so the card) counts on its declined or referred ones."""
    life, key, result = denied
    report = json.loads((life.settings.model_dir(MODEL, key) / EXPLAINABILITY_FILE).read_bytes())
    trained = result.output_for_node(f"{MODEL}__trained_model")
    test = read_dataset(life.config.model(MODEL), trained["test_path"]).reset_index(drop=True)
    sample = test.sample(n=report["sample_rows"], random_state=0)  # as explainability_report draws it
    answers, log = _decide(life, result, _served(life, key, result, _pack(life, key)), sample)
    logged = [log.get(a["decision_id"]).reasons_withheld for a in answers if a["outcome"] != "approve"]
    withheld = report["withheld_reasons"]
    assert (len(logged), sum(n > 0 for n in logged), sum(logged)) == (
        withheld["adverse"],
        withheld["applications"],
        withheld["reasons"],
    )


def test_the_proxies_are_read_from_the_approved_pack_only(denied):
    """Unflagging the proxy in the state dir's report (and appending a ledger entry for it, as a writer of both
    could) must not bring it back as a reason: the flags come from the sealed pack the move was approved on, and
    a pack whose report was changed is not served."""
    life, key, result = denied
    pack = _pack(life, key)
    path = life.settings.model_dir(MODEL, key) / EXPLAINABILITY_FILE
    original = path.read_bytes()
    unflagged = json.dumps({**json.loads(original), "proxy_flags": []})
    path.write_text(unflagged)
    trained = result.output_for_node(f"{MODEL}__trained_model")
    forged = events.ExplainabilityReportPublished(
        actor="system:explainability_report",
        model=MODEL,
        version=key,
        report=file_sha256(path),
        artifact=trained["artifact_sha256"],
    )
    Ledger.for_settings(life.settings).append(forged)
    try:
        assert PROXY in _served(life, key, result, pack).reasons.withheld
        (pack.path / EXPLAINABILITY_FILE).write_text(unflagged)
        with pytest.raises(ServingError, match=f"approved evidence pack {pack.digest[:12]} cannot be read"):
            _served(life, key, result, pack)
    finally:
        path.write_bytes(original)
        (pack.path / EXPLAINABILITY_FILE).write_bytes(original)
