"""What a version's live decisions are compared with, built from what was approved.

A version's monitoring reference is a sample of the held-out rows of its
training snapshot (the DVC md5 its registry version is tagged with): the same
population it was trained on, rows it never saw, so its scores there are what
a stationary population gets. Their features are the data-drift reference;
their scores, computed by the approved artifact, the score-drift reference.
The model card's figures (AUC, KS) and each feature's importance (its share of
the mean absolute SHAP attributions) are read from the sealed evidence pack the
version was approved with, after verifying it.

A reference is built once per version, saved beside the version's reports and
its SHA-256 ledgered; a saved file whose digest is not the ledgered one is
rebuilt, never trusted. Loaded references and pipelines stay in memory, so a
sensor tick only pays for the window it judges.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from governance import events, training
from governance.config import GovernedModel
from governance.data.source import read_snapshot
from governance.digests import file_sha256
from governance.errors import GovernanceError
from governance.objectstore import sealed_pack_dir
from governance.registry import version_key
from governance.release import evidence_pack
from governance.release.production import approved_artifact, verified_moves
from governance.release.services import Services

REFERENCE_ROWS = 3000
FILE_NAME = "monitoring_reference.parquet"
SCORE_COLUMN = "__score__"
ACTOR = "system:monitoring"
_KEEP = 64


@dataclass(frozen=True)
class Reference:
    model: str
    version: int
    artifact_sha256: str
    rows: pd.DataFrame  # feature columns and SCORE_COLUMN
    sha256: str
    card: dict[str, float] | None  # the approved model card's "auc" and "ks"
    card_problem: str | None  # why `card` is None
    importance: dict[str, dict] | None = None  # feature -> {"share", "rank"} from the sealed explainability report
    importance_problem: str | None = None  # why `importance` is None

    @property
    def key(self) -> str:
        return version_key(self.model, self.version)

    @property
    def scores(self) -> np.ndarray:
        return self.rows[SCORE_COLUMN].to_numpy(dtype=float)

    @cached_property
    def content_digest(self) -> str:
        """A digest of the rows themselves. `sha256` is the recorded file's, and one a sensor built in memory
        has none, so caches of what is derived from the rows are keyed on this (under a millisecond for 3,000 rows)."""
        hashed = pd.util.hash_pandas_object(self.rows, index=False).to_numpy()
        return hashlib.sha256(",".join(self.rows.columns).encode() + hashed.tobytes()).hexdigest()


class References:
    """References and approved pipelines of the versions being monitored, loaded once per process."""

    def __init__(self, services: Services, record: bool = True) -> None:
        self.services, self.record = services, record
        self._references: OrderedDict[tuple, Reference] = OrderedDict()
        self._pipelines: OrderedDict[tuple, Pipeline] = OrderedDict()
        self._lock = threading.RLock()

    def get(self, model: GovernedModel, version: int) -> Reference:
        approved = self.approved_artifact(model.name, version)
        wanted = (model.name, version, approved)
        with self._lock:
            if wanted not in self._references:
                self._references[wanted] = self._load_or_build(model, version, approved)
                _trim(self._references)
            self._references.move_to_end(wanted)
            return self._references[wanted]

    def pipeline(self, model: GovernedModel, version: int) -> Pipeline:
        """The version's pipeline, from the artifact with the approved digest only."""
        approved = self.approved_artifact(model.name, version)
        wanted = (model.name, version, approved)
        with self._lock:
            if wanted not in self._pipelines:
                registry = self.services.registry
                self._pipelines[wanted] = registry.load(registry.version(model.name, version), approved)
                _trim(self._pipelines)
            return self._pipelines[wanted]

    def approved_artifact(self, model: str, version: int) -> str:
        approved = approved_artifact(verified_moves(self.services, model), version)
        if approved is None:
            raise GovernanceError(
                f"{version_key(model, version)} was never deployed through governance: "
                "no approved artifact to monitor it against"
            )
        return approved

    def _load_or_build(self, model: GovernedModel, version: int, approved: str) -> Reference:
        key = version_key(model.name, version)
        path = self.services.settings.model_dir(model.name, key) / FILE_NAME
        move = _last_move(self.services, model, version)  # one verification for the md5 and the pack
        md5 = _sealed_data_md5(self.services, model, key, move)
        recorded = [
            e
            for e in self.services.ledger.events(events.MonitoringReferenceBuilt, model=model.name, version=key)
            if e.artifact == approved and e.data_md5 == md5
        ]
        if path.is_file() and recorded and file_sha256(path) == recorded[-1].reference:
            rows, sha256 = pd.read_parquet(path), recorded[-1].reference
        else:
            rows = self._build(model, version, path, approved, md5, rebuilt=path.is_file())
            sha256 = file_sha256(path) if self.record else "not recorded yet (built in memory by a sensor)"
        pack, problem = _approved_pack(self.services, model, key, move)
        card, card_problem = _card(pack, problem)
        importance, importance_problem = _importance(pack, problem, model)
        return Reference(
            model.name, version, approved, rows, sha256, card, card_problem, importance, importance_problem
        )

    def _build(self, model: GovernedModel, version: int, path, approved: str, md5: str, rebuilt: bool) -> pd.DataFrame:
        registered = self.services.registry.version(model.name, version)
        held_out = training.split(model, read_snapshot(self.services.settings, model, md5)).test
        if len(held_out) > REFERENCE_ROWS:
            held_out = held_out.sample(REFERENCE_ROWS, random_state=0)
        rows = held_out[model.feature_columns].reset_index(drop=True)
        rows[SCORE_COLUMN] = training.score(self.pipeline(model, version), model, held_out)
        if not self.record:  # evaluated by a sensor: the same rows, built again, are recorded by the run
            return rows
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = path.with_name(path.name + ".tmp")
        rows.to_parquet(staging, index=False)
        staging.replace(path)
        self.services.ledger.append(
            events.MonitoringReferenceBuilt(
                actor=ACTOR,
                model=model.name,
                version=registered.key,
                reference=file_sha256(path),
                artifact=approved,
                data_md5=md5,
                rows=len(rows),
                rebuilt_unverified_file=rebuilt,
            )
        )
        return rows


def _last_move(services: Services, model: GovernedModel, version: int) -> events.MoveStep | None:
    """The latest verified move to the version (the one whose evidence pack monitoring reads), or None."""
    key = version_key(model.name, version)
    done = [m for m in verified_moves(services, model.name) if m.version == key]
    return done[-1] if done else None


def _sealed_data_md5(services: Services, model: GovernedModel, key: str, move: events.MoveStep | None) -> str:
    """The DVC md5 of the data the version was trained on, as the evidence pack of its latest verified `move`
    seals it (never the MLflow tag: a writer of MLflow's store could point monitoring at other data and blind it)."""
    if move is None:
        raise GovernanceError(f"{key} was never deployed through governance: its training data is unknown")
    digest = move.evidence_pack
    md5 = evidence_pack.opened(sealed_pack_dir(services.settings, model.name, key, digest), digest).facts.get(
        "data_md5"
    )
    if not md5:
        raise GovernanceError(
            f"{key}: its evidence pack {digest[:12]} seals no data_md5, so its training data is unknown"
        )
    return md5


def _approved_pack(services: Services, model: GovernedModel, key: str, move: events.MoveStep | None):
    """The evidence pack of the version's latest verified `move`, verified; or None and why it cannot be used."""
    if move is None:
        return None, f"{key} was never deployed"
    digest = move.evidence_pack
    try:
        return evidence_pack.verify(sealed_pack_dir(services.settings, model.name, key, digest), digest), None
    except evidence_pack.EvidenceError as exc:
        return None, f"{key}'s approved evidence pack cannot be used: {exc}"


def sealed_report(services: Services, model: GovernedModel, version: int, name: str) -> tuple[dict | None, str, str]:
    """A report sealed in the evidence pack the version was deployed with, verified: (report or None, where it
    is or why it cannot be used, its SHA-256 or "")."""
    key = version_key(model.name, version)
    pack, problem = _approved_pack(services, model, key, _last_move(services, model, version))
    report, problem = _sealed_report(pack, name) if pack else (None, problem)
    if report is None:
        return None, problem or "", ""
    return report, str(pack.path / name), pack.manifest["files"][name]


def _sealed_report(pack, name: str) -> tuple[dict | None, str | None]:
    if name not in pack.manifest["files"]:
        return None, f"{pack.manifest['version']}'s approved evidence pack {pack.digest[:12]}... has no {name}"
    return json.loads((pack.path / name).read_bytes()), None


def _card(pack, problem: str | None) -> tuple[dict[str, float] | None, str | None]:
    """AUC and KS from the performance report sealed in the evidence pack the version was deployed with."""
    report, problem = _sealed_report(pack, "performance.json") if pack else (None, problem)
    if report is None:
        return None, problem
    if report.get("auc") is None or report.get("ks") is None:
        return None, f"{pack.manifest['version']}'s sealed performance report has no AUC or KS"
    return {"auc": float(report["auc"]), "ks": float(report["ks"])}, None


def _importance(pack, problem: str | None, model: GovernedModel) -> tuple[dict[str, dict] | None, str | None]:
    """Each feature's share of the attributions in the explainability report sealed with the version."""
    report, problem = _sealed_report(pack, "explainability.json") if pack else (None, problem)
    if report is None:
        return None, problem
    return importance_shares(report, model.feature_columns), None


def importance_shares(report: dict, features: list[str]) -> dict[str, dict]:
    """feature -> {"share": mean |SHAP| over the sum of all features', "rank"}; a feature the report
    does not list carries no attribution (share 0, ranked last)."""
    listed = {row["feature"]: float(row["mean_abs_shap"]) for row in report.get("importance", [])}
    total = sum(listed.values())
    ordered = sorted(features, key=lambda f: -listed.get(f, 0.0))
    return {
        f: {"share": listed.get(f, 0.0) / total if total > 0 else 0.0, "rank": i + 1} for i, f in enumerate(ordered)
    }


def _trim(cache: OrderedDict) -> None:
    while len(cache) > _KEEP:
        cache.popitem(last=False)
