"""`govern labels import FILE`: the whole file is checked, then written at once; a bad file changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from governance import events
from governance.decisions import DecisionLog
from governance.ledger import Ledger
from governance.monitoring.labels import labelled_count
from tests.monitoring.conftest import govern_labels

IDS = [f"d-{i}" for i in range(6)]


@pytest.fixture
def log(settings) -> DecisionLog:
    decisions = DecisionLog.for_settings(settings)
    for decision_id in IDS:
        decisions.record(
            decision_id=decision_id,
            ts="2026-11-22T10:00:00.000000Z",
            model="credit_scoring",
            version=1,
            input_digest="0" * 64,
            features={},
            protected=None,
            score=0.1,
            outcome="approve",
            reasons=[],
            kill_switch=False,
        )
    return decisions


def write(path: Path, rows: list[tuple]) -> Path:
    pd.DataFrame(rows, columns=["decision_id", "label"]).to_csv(path, index=False)
    return path


def test_a_file_of_outcomes_labels_the_decisions_and_is_ledgered_without_them(settings, log, tmp_path):
    path = write(tmp_path / "labels.csv", [(i, n % 2) for n, i in enumerate(IDS[:4])])
    result = govern_labels(settings, "import", str(path), "--json")
    assert result.exit_code == 0, result.output
    done = json.loads(result.output)
    assert done["labelled"] == {"credit_scoring": 4} and done["unchanged"] == 0
    assert log.get("d-1").label == 1 and log.get("d-1").labelled_at == done["labelled_at"]
    ledger = Ledger.for_settings(settings)
    imported = ledger.latest(events.LabelsImported)
    assert imported.file == done["sha256"] and imported.labelled == 4 and imported.file_rows == 4
    assert "d-1" not in json.dumps(ledger.entry(imported.seq).to_dict())  # counts and the file's digest only
    again = json.loads(govern_labels(settings, "import", str(path), "--json").output)
    assert again["labelled"] == {} and again["unchanged"] == 4  # the same outcomes again change nothing


@pytest.mark.parametrize(
    "rows, columns, problem",
    [
        ([("d-0", 0), ("nobody", 1)], None, "no such decision in the decision log, row(s) 2"),
        (
            [("d-0", 0), ("d-1", 2)],
            None,
            "label not one of credit_scoring's outcomes [0, 1] (column 'default'), row(s) 2",
        ),
        ([("d-0", 0), ("d-0", 0)], None, "decision(s) listed more than once, row(s) 1, 2"),
        ([("d-0", "yes")], None, "label is not a whole number in row(s) 1"),
        ([("d-0", 0, "x")], ["decision_id", "label", "name"], "expected exactly the columns decision_id, label"),
    ],
)
def test_a_bad_file_is_refused_naming_the_rows_and_labels_nothing(settings, log, tmp_path, rows, columns, problem):
    path = tmp_path / "labels.csv"
    pd.DataFrame(rows, columns=columns or ["decision_id", "label"]).to_csv(path, index=False)
    result = govern_labels(settings, "import", str(path))
    assert result.exit_code != 0 and problem in str(result.exception), str(result.exception)
    assert str(path) in str(result.exception)
    assert labelled_count(log, "credit_scoring") == 0


def test_every_kind_of_problem_in_a_file_is_named_at_once(settings, log, tmp_path):
    assert govern_labels(settings, "import", str(write(tmp_path / "a.csv", [("d-0", 0)]))).exit_code == 0
    rows = [("d-1", 1), ("", 0), ("d-2", "yes"), ("d-3", 0), ("d-3", 0), ("nobody", 1), ("d-4", 7), ("d-0", 1)]
    path = write(tmp_path / "b.csv", rows)
    result = govern_labels(settings, "import", str(path))
    assert result.exit_code != 0
    assert str(result.exception) == (
        f"{path}: decision_id is empty in row(s) 2; label is not a whole number in row(s) 3; "
        "decision(s) listed more than once, row(s) 4, 5; no such decision in the decision log, row(s) 6; "
        "label not one of credit_scoring's outcomes [0, 1] (column 'default'), row(s) 7; "
        "decision(s) already labelled with another outcome, row(s) 8; a label is a recorded fact and is not "
        "overwritten"
    )
    assert labelled_count(log, "credit_scoring") == 1  # d-0's, from the first file only


def test_decisions_of_a_model_no_longer_governed_are_named_with_the_rest(settings, log, tmp_path):
    log.record(
        decision_id="r-0",
        ts="2026-11-22T10:00:00.000000Z",
        model="retired_model",
        version=1,
        input_digest="0" * 64,
        features={},
        protected=None,
        score=0.1,
        outcome="approve",
        reasons=[],
        kill_switch=False,
    )
    path = write(tmp_path / "a.csv", [("d-0", 0), ("r-0", 1), ("nobody", 0)])
    refused = str(govern_labels(settings, "import", str(path)).exception)
    assert refused == (
        f"{path}: no such decision in the decision log, row(s) 3; "
        "decision(s) of a model this config does not govern, row(s) 2"
    )
    refused = str(govern_labels(settings, "import", str(path), "--model", "credit_scoring").exception)
    assert refused.endswith("decision(s) of another model than 'credit_scoring', row(s) 2")
    assert labelled_count(log, "credit_scoring") == 0


def test_a_recorded_outcome_is_never_overwritten(settings, log, tmp_path):
    assert govern_labels(settings, "import", str(write(tmp_path / "a.csv", [("d-0", 0)]))).exit_code == 0
    result = govern_labels(settings, "import", str(write(tmp_path / "b.csv", [("d-1", 1), ("d-0", 1)])))
    assert "already labelled with another outcome, row(s) 2" in str(result.exception)
    assert log.get("d-1").label is None and log.get("d-0").label == 0


def test_model_option_refuses_another_model_s_decisions(settings, log, tmp_path):
    result = govern_labels(settings, "import", str(write(tmp_path / "a.csv", [("d-0", 0)])), "--model", "taiwan")
    assert "unknown model 'taiwan'" in str(result.exception)
