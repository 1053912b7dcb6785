"""The release gate's comparison with the current champion, also when the feature set changed.

The champion is scored with the features its own pipeline was trained on (read from the approved artifact,
loaded only if its digest is the one approved), on this version's test rows: a new version that drops a
feature (a proxy removed from production) is still compared on the same rows. When this version's data lacks
a column the champion needs, the champion's sealed AUC (from its verified evidence pack, on its own test set)
is used instead, and `basis` says so; when neither is possible the gate has no champion AUC and `basis` says
why. `basis` is quoted by the gate's reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from governance import training
from governance.config import GovernedModel
from governance.data.source import read_snapshot
from governance.metrics.performance import discrimination
from governance.objectstore import sealed_pack_dir
from governance.registry import parse_version_key
from governance.release import evidence_pack
from governance.release.production import verified_champion
from governance.release.services import Services


@dataclass(frozen=True)
class ChampionComparison:
    auc: float | None  # None: no champion, or one that could not be compared (`basis` says why)
    basis: str | None  # how the champion's AUC was obtained; None without a champion


NO_CHAMPION = ChampionComparison(None, None)


def champion_comparison(services: Services, model: GovernedModel, version: int, data_md5: str) -> ChampionComparison:
    """The governed champion's AUC against registered `version`, trained on snapshot `data_md5` (see the module
    docstring)."""
    move = verified_champion(services, model.name)  # the alias and rows are caches
    if move is None or parse_version_key(move.version)[1] == version:
        return NO_CHAMPION
    champion = parse_version_key(move.version)[1]
    pipeline = services.registry.load(services.registry.version(model.name, champion), move.artifact)
    features = [str(name) for name in pipeline.feature_names_in_]
    test = training.split(model, read_snapshot(services.settings, model, data_md5)).test
    missing = sorted(set(features) - set(test.columns))
    if not missing:
        score = pipeline.predict_proba(training.feature_frame(test, features))[:, 1]
        auc = discrimination(training.unfavourable(model, test), score)["auc"]
        changed = _changes(features, model.feature_columns)
        return ChampionComparison(
            auc,
            f"champion {move.version} AUC {auc:.4f}, scored with the {len(features)} features it was trained on "
            f"over this version's {len(test)} test rows{changed}",
        )
    pack = evidence_pack.verify(
        sealed_pack_dir(services.settings, model.name, move.version, move.evidence_pack), move.evidence_pack
    )
    absent = f"this version's data lacks its features {', '.join(missing)}"
    if "performance.json" not in pack.manifest["files"]:
        return ChampionComparison(
            None, f"champion {move.version} not compared: {absent}, and its evidence pack seals no performance report"
        )
    auc = float(json.loads((pack.path / "performance.json").read_bytes())["auc"])
    return ChampionComparison(
        auc,
        f"champion {move.version} AUC {auc:.4f} as sealed in its evidence pack {pack.digest[:12]} (its own test "
        f"set, not this version's): {absent}",
    )


def _changes(champion: list[str], candidate: list[str]) -> str:
    dropped, added = sorted(set(champion) - set(candidate)), sorted(set(candidate) - set(champion))
    parts = [f"{label} {', '.join(names)}" for label, names in (("drops", dropped), ("adds", added)) if names]
    return f"; this version {' and '.join(parts)}" if parts else ""
