"""Outcome labels: the real outcome of a decision, joined to it when it becomes known (months later, in credit).

A labels file (CSV or Parquet) has exactly two columns: `decision_id` (as the
scoring API returned it) and `label` (the real outcome, one of the target's two
values in the model's data contract). The whole file is checked before
anything is written, and then written in one transaction: an unknown decision,
a label outside the contract, a decision listed twice, or a decision already
labelled differently refuses the file, naming every kind of problem found and
its rows. Labelling a decision
again with the same outcome changes nothing. Each import is ledgered per model
with the file's SHA-256 and counts (no ids, no outcomes: those stay in the
decision log).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select

from governance import events
from governance.config import GovernanceConfig
from governance.data.source import read_table
from governance.decisions import DecisionLog, decisions
from governance.digests import file_sha256
from governance.errors import GovernanceError
from governance.ledger import Ledger
from governance.timestamps import utc_timestamp

COLUMNS = ("decision_id", "label")
_SHOWN = 5
_CHUNK = 500


class LabelsError(GovernanceError):
    """A labels file is refused; nothing was written. The message names the file, rows and problem."""


@dataclass(frozen=True)
class LabelImport:
    path: str
    sha256: str
    rows: int
    labelled: dict[str, int]  # model -> decisions newly labelled
    unchanged: int  # already carried the same label
    labelled_at: str

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "sha256": self.sha256,
            "rows": self.rows,
            "labelled": self.labelled,
            "unchanged": self.unchanged,
            "labelled_at": self.labelled_at,
        }


def import_labels(
    log: DecisionLog, ledger: Ledger, config: GovernanceConfig, path: str | Path, actor: str, model: str | None = None
) -> LabelImport:
    """Check the whole file, then label its decisions in one transaction and ledger the import."""
    path = Path(path)
    frame = _read(path)
    sha256 = file_sha256(path)
    known = _decisions(log, frame["decision_id"].tolist())
    problems = _problems(frame, known, config, model)
    if problems:
        raise LabelsError(f"{path}: " + "; ".join(problems))
    fresh = [(i, int(v)) for i, v in zip(frame["decision_id"], frame["label"]) if known[i][1] is None]
    labelled_at = utc_timestamp()
    if fresh:
        log.add_labels(fresh, labelled_at)
    per_model: dict[str, int] = {}
    for decision_id, _ in fresh:
        per_model[known[decision_id][0]] = per_model.get(known[decision_id][0], 0) + 1
    for name, count in sorted(per_model.items()):
        ledger.append(
            events.LabelsImported(
                actor=actor, model=name, file=sha256, labelled=count, file_rows=len(frame), labelled_at=labelled_at
            )
        )
    return LabelImport(str(path), sha256, len(frame), per_model, len(frame) - len(fresh), labelled_at)


def labelled_count(log: DecisionLog, model: str) -> int:
    """How many of `model`'s decisions carry their real outcome."""
    query = (
        select(func.count()).select_from(decisions).where(decisions.c.model == model, decisions.c.label.is_not(None))
    )
    with log.engine.connect() as conn:
        return conn.execute(query).scalar_one()


def _read(path: Path) -> pd.DataFrame:
    """The file's two columns: decision ids as stripped text ("" where empty), labels as numbers (NaN where
    not a number)."""
    frame = read_table(path)
    if tuple(frame.columns) != COLUMNS:
        raise LabelsError(
            f"{path}: expected exactly the columns {', '.join(COLUMNS)}, found "
            f"{', '.join(map(str, frame.columns)) or 'none'} (labels files carry nothing else)"
        )
    if frame.empty:
        raise LabelsError(f"{path}: no labels in the file")
    ids = frame["decision_id"]
    return pd.DataFrame(
        {
            "decision_id": ids.astype(str).str.strip().where(ids.notna(), ""),
            "label": pd.to_numeric(frame["label"], errors="coerce"),
        }
    )


def _decisions(log: DecisionLog, ids: list[str]) -> dict[str, tuple[str, int | None]]:
    """decision id -> (model, current label), for the ids the log knows."""
    found = {}
    with log.engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            query = select(decisions.c.decision_id, decisions.c.model, decisions.c.label).where(
                decisions.c.decision_id.in_(chunk)
            )
            found.update({row.decision_id: (row.model, row.label) for row in conn.execute(query)})
    return found


def _problems(frame: pd.DataFrame, known: dict, config: GovernanceConfig, model: str | None) -> list[str]:
    """Every kind of problem in the file, each naming its rows (a file is fixed in one pass, not one per run)."""
    ids, labels = frame["decision_id"], frame["label"]
    blank, whole, found = ids == "", labels == labels.round(), ids.isin(list(known))  # NaN is never whole
    owners = ids.map(lambda i: known[i][0] if i in known else None)
    current = ids.map(lambda i: known[i][1] if i in known else None)
    problems = _where(blank, "decision_id is empty in row(s)")
    problems += _where(~whole, "label is not a whole number in row(s)")
    problems += _where(~blank & ids.duplicated(keep=False), "decision(s) listed more than once, row(s)")
    problems += _where(~blank & ~found, "no such decision in the decision log, row(s)")
    governed = owners.isin(list(config.models))
    if model is not None:
        config.model(model)
        problems += _where(found & (owners != model), f"decision(s) of another model than {model!r}, row(s)")
    else:
        problems += _where(found & ~governed, "decision(s) of a model this config does not govern, row(s)")
    for name in sorted(set(owners[found & governed])):
        spec = config.model(name)
        allowed = spec.contract[spec.target].values
        problems += _where(
            (owners == name) & whole & ~labels.isin(allowed),
            f"label not one of {name}'s outcomes {allowed} (column {spec.target!r}), row(s)",
        )
    problems += _where(
        whole & current.notna() & (current != labels),
        "decision(s) already labelled with another outcome, row(s)",
        "; a label is a recorded fact and is not overwritten",
    )
    return problems


def _where(mask: pd.Series, problem: str, why: str = "") -> list[str]:
    rows = _rows(mask)
    return [f"{problem} {rows}{why}"] if rows else []


def _rows(mask: pd.Series) -> str:
    """Data rows of the file (1 = the first row after the header), the first few."""
    rows = [str(i + 1) for i in mask[mask].index[:_SHOWN]]
    more = int(mask.sum()) - len(rows)
    return ", ".join(rows) + (f" and {more} more" if more > 0 else "")
