"""A second governed model, configured only in this test: the real Taiwan credit data, same graph."""

import json
from pathlib import Path

import pytest

from tests.conftest import DATASETS
from tests.helpers import write_config

pytestmark = pytest.mark.slow
TAIWAN = DATASETS / "taiwan_credit_default.csv"

NUMBER = {"kind": "number", "min": -10_000_000, "max": 10_000_000}
REPAYMENT = {"kind": "integer", "min": -2, "max": 9}
TAIWAN_MODEL = {
    "description": "Default of credit card clients next month (Taiwan, 2005; UCI, CC BY 4.0).",
    "intended_use": "A second governed model in tests: real data through the unchanged graph.",
    "limitations": ["2005 data from one Taiwanese bank."],
    "source": {"file": {"path": str(TAIWAN)}},
    "columns": {
        "ID": {"kind": "integer", "min": 1},
        "X1": {"kind": "number", "min": 0, "max": 10_000_000},
        "X2": {"kind": "integer", "values": [1, 2]},
        "X3": {"kind": "integer", "min": 0, "max": 6},
        "X4": {"kind": "integer", "min": 0, "max": 3},
        "X5": {"kind": "integer", "min": 18, "max": 100},
        **{f"X{i}": REPAYMENT for i in range(6, 12)},
        **{f"X{i}": NUMBER for i in range(12, 24)},
        "Y": {"kind": "integer", "values": [0, 1]},
    },
    "id_column": "ID",
    "target": "Y",
    "favourable_outcome": 0,
    "protected_attributes": [
        {"column": "X2", "name": "sex"},
        {"column": "X5", "name": "age", "bands": [18, 30, 40, 50, 101]},
    ],
    "risk_tier": "high",
    "estimator": {"kind": "hist_gradient_boosting", "params": {"max_iter": 80, "random_state": 0}},
    "decisioning": {"approve_below": 0.25, "decline_at_or_above": 0.6},
    "evaluation": {"bootstrap_samples": 60, "shap_sample_rows": 300},
    "owners": {"team": "card-risk", "data_scientists": ["dana"], "business_owner": "bea"},
}


@pytest.mark.skipif(not TAIWAN.is_file(), reason=f"real dataset not present at {TAIWAN}")
def test_taiwan_credit_runs_through_the_same_graph(tmp_path, lifecycle):
    life = lifecycle(write_config(tmp_path / "governance.yaml", {"taiwan_credit": TAIWAN_MODEL}))
    assert "taiwan_credit_candidate" in {j.name for j in life.defs.resolve_all_job_defs()}
    key, result = life.candidate("taiwan_credit")
    assert result.success
    assert key == "taiwan_credit-v1"
    model = life.config.model("taiwan_credit")
    assert "X2" not in model.feature_columns and "X5" not in model.feature_columns
    assert len(model.feature_columns) == 21
    fairness = json.loads((life.settings.model_dir("taiwan_credit", key) / "fairness.json").read_bytes())
    assert set(fairness["gated_attributes"]) == {"sex", "age"}
    assert set(fairness["attributes"]["age"]["groups"]) == {
        "[18.0, 30.0)",
        "[30.0, 40.0)",
        "[40.0, 50.0)",
        "[50.0, 101.0)",
    }
    trained = result.output_for_node("taiwan_credit__trained_model")
    assert 0.70 < trained["test_auc"] < 0.85
    from governance.digests import file_md5

    assert trained["data_md5"] == file_md5(TAIWAN)
    card = Path(result.output_for_node("taiwan_credit__model_card")["markdown_path"]).read_text()
    features_row = next(line for line in card.splitlines() if line.startswith("| Features (21)"))
    listed = {name.strip() for name in features_row.split("|")[2].split(",")}
    assert "X2" not in listed and "X5" not in listed and "X1" in listed
    assert "| Protected attributes (measured, never features) | sex, age |" in card
