"""What each model's decisions use: the governed champion, followed without a restart.

The MLflow `champion` alias names a version; it is served only if a governed
deployment (or rollback) of that version completed, and only from an artifact
whose SHA-256 is the digest that deployment approved. Anything else (no alias,
an alias moved by hand, a changed artifact, a failed load) is the safe state:
every decision is referred to manual review.

A follower thread re-reads the alias and the deployment records every
`poll_seconds`. A new champion is loaded and explained completely in that
thread, then swapped in with one assignment, so a request sees either the old
or the new version, never half of one. Recently served versions stay loaded,
so a rollback to one of them takes effect at the next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from sklearn.pipeline import Pipeline

from governance.config import GovernedModel
from governance.control import ControlStore, KillSwitch
from governance.errors import GovernanceError
from governance.events import MoveStep
from governance.metrics.explainability import Explainer, flagged_proxies, version_explainer
from governance.metrics.reasons import ReasonCodes
from governance.objectstore import sealed_pack_dir
from governance.registry import ArtifactChanged, ModelRegistry, RegisteredVersion, version_key
from governance.release.evidence_pack import EXPLAINABILITY_FILE, opened
from governance.release.production import Production, record_incidents, verified_production
from governance.release.services import Services
from governance.serving import metrics
from governance.settings import Settings
from governance.timestamps import utc_timestamp

log = logging.getLogger(__name__)

KEEP_LOADED = 3
# The kill switch's reason when its state cannot be read (the error stays in the server log: it names hosts).
KILL_SWITCH_UNREADABLE = "its state cannot be read, so it counts as on"
RETRY_FAILED_LOAD_SECONDS = 30.0
Loadable = tuple[int, str, str]  # version, approved artifact digest, approved evidence pack digest
# A following thread whose check of the signed record has not completed for this long (or for five polls, if
# longer) is stalled, by a lock an insider holds on a table it reads, say: the kill switch then counts as on, as
# the record might say so by now.
RECORD_STALE_SECONDS = 5.0


class ServingError(GovernanceError):
    """A version cannot be served; the message names the version and why."""


class ThresholdsNotApproved(ServingError):
    """The config's decision thresholds are not the ones sealed with the version's approved evidence pack."""


@dataclass(frozen=True)
class ServedVersion:
    """A champion loaded from its approved artifact, with the explainer its reasons come from and the reason
    codes it may give (never a protected attribute or a proxy its screen flagged)."""

    version: int
    artifact_sha256: str
    pipeline: Pipeline
    explainer: Explainer
    reasons: ReasonCodes
    loaded_at: str


@dataclass(frozen=True)
class ServingState:
    """The champion alias as last read, and what is served for it (None: the safe state, and why)."""

    champion: int | None
    served: ServedVersion | None
    safe_reason: str | None

    def describe(self) -> dict:
        served = self.served
        return {
            "champion_version": self.champion,
            "served_version": served.version if served else None,
            "artifact_sha256": served.artifact_sha256 if served else None,
            "loaded_at": served.loaded_at if served else None,
            "unserved_reason": self.safe_reason,
        }


def load_version(
    settings: Settings,
    registry: ModelRegistry,
    model: GovernedModel,
    version: int,
    approved_sha256: str,
    evidence_pack: str,
) -> ServedVersion:
    """Load a version from the artifact with the approved digest, with the proxies flagged in the evidence pack
    its move was approved on, and build its explainer; raise if anything fails."""
    registered = registry.version(model.name, version)
    proxies, md5, decisioning = _sealed(settings, registered, evidence_pack)
    configured = model.decisioning.model_dump()
    if decisioning is not None and decisioning != configured:  # packs sealed before thresholds were: None
        raise ThresholdsNotApproved(
            f"{registered.key}: the config's decision thresholds {_thresholds(configured)} are not the ones "
            f"approved with its evidence pack {evidence_pack[:12]} ({_thresholds(decisioning)}): decisions would "
            "change without an approval; restore them, or approve a version trained under the new ones"
        )
    pipeline = registry.load(registered, approved_sha256)
    trained_on = list(getattr(pipeline, "feature_names_in_", []))
    if trained_on != model.feature_columns:
        raise ServingError(
            f"{registered.key}: trained on features {trained_on}, but the config's model has "
            f"{model.feature_columns}; the request schema would not match the model"
        )
    return ServedVersion(
        version=version,
        artifact_sha256=approved_sha256,
        pipeline=pipeline,
        explainer=version_explainer(settings, model, pipeline, md5),  # the model card's explainer
        reasons=ReasonCodes(model, proxies),
        loaded_at=utc_timestamp(),
    )


def _thresholds(decisioning: dict) -> str:
    return f"(approve below {decisioning.get('approve_below')}, decline at or above {decisioning.get('decline_at_or_above')})"


def _sealed(
    settings: Settings, registered: RegisteredVersion, evidence_pack: str
) -> tuple[frozenset[str], str, dict | None]:
    """From the evidence pack the version's move was approved on: the proxies its explainability report flagged,
    the md5 of its training data (its SHAP background) and the decision thresholds its reports were made with.
    Never the state dir's copy of the report, a ledger entry's digest of it or an MLflow tag, which a writer of
    those could change to unflag a proxy."""
    path = sealed_pack_dir(settings, registered.model, registered.key, evidence_pack)
    try:
        pack = opened(path, evidence_pack)
        report = pack.document(EXPLAINABILITY_FILE, "the pack seals no explainability report")
        md5 = pack.facts.get("data_md5")
    except (GovernanceError, ValueError, OSError) as exc:  # not the sealed manifest or report, or not fetched
        raise ServingError(
            f"{registered.key}: the flagged proxies of its approved evidence pack {evidence_pack[:12]} cannot be "
            f"read ({exc}), so its reasons could name one"
        ) from None
    if not md5:
        raise ServingError(
            f"{registered.key}: its evidence pack {evidence_pack[:12]} seals no data_md5, so its "
            "SHAP background cannot be read"
        )
    return flagged_proxies(report), md5, pack.facts.get("decisioning")


class ChampionFollower:
    """Keeps one model's ServingState in step with the champion alias and the deployment records."""

    def __init__(
        self,
        settings: Settings,
        model: GovernedModel,
        registry: ModelRegistry,
        control: ControlStore,
        poll_seconds: float = 1.0,
    ) -> None:
        self.settings, self.model, self.registry, self.control = settings, model, registry, control
        self.poll_seconds = poll_seconds
        self.state = ServingState(champion=None, served=None, safe_reason="the champion alias has not been read yet")
        self.problem: str | None = None  # the last failure to read the alias, while the last state is kept
        self.kill_switch = KillSwitch(model=model.name, disabled=True, reason="the kill switch has not been read yet")
        # The kill switch as the latest verified signed statement sets it; until read, on (deny by default).
        self.switched_off_by_record: str | None = "the signed record has not been read yet"
        self.verified_at = time.monotonic()  # when the last completed check of the signed record started
        self._loads = 0  # versions loaded so far
        self.services = Services(settings)
        self._seen_incidents: set[str] = set()
        self._loaded: OrderedDict[Loadable, ServedVersion] = OrderedDict()
        self._failed: tuple[Loadable, float, str] | None = None  # what, when, why
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> ServingState:
        """Derive the champion and the kill switch from the signed record; load and swap in a new champion if it
        changed. Publish what is answered: with the kill switch on (or unreadable), the safe state."""
        loads = self._loads
        state = self._follow_champion()
        if self._loads != loads:  # a load takes seconds: check the record again before relying on it
            state = self._follow_champion()
        self.kill_switch = switch = self.in_force(self._read_kill_switch())
        metrics.KILL_SWITCH.labels(self.model.name).set(1 if switch.disabled else 0)
        served = state.served.version if state.served and not switch.disabled else 0
        metrics.SERVED_VERSION.labels(self.model.name).set(served)
        return state

    def in_force(self, row: KillSwitch) -> KillSwitch:
        """The kill switch serving obeys: its row (read per batch, so a flip acts at once), held on while the
        latest verified signed statement says on, whatever the row says."""
        held = self.switched_off_by_record or self._stalled()
        return KillSwitch(model=self.model.name, disabled=True, reason=held) if held and not row.disabled else row

    def _stalled(self) -> str | None:
        """Why the following thread's view of the signed record is too old to rely on; None while it is fresh, or
        when no thread follows (a caller that refreshes by hand, as in-process traffic does, keeps it fresh)."""
        if self._thread is None:
            return None
        age = time.monotonic() - self.verified_at
        if age <= max(RECORD_STALE_SECONDS, 5 * self.poll_seconds):
            return None
        return f"serving has not completed a check of the signed record for {age:.0f} s, so it counts as on"

    def _read_kill_switch(self) -> KillSwitch:
        try:
            return self.control.kill_switch(self.model.name)
        except Exception as exc:  # as each batch does: an unreadable kill switch counts as on
            log.warning("%s: cannot read the kill switch: %s", self.model.name, exc)
            return KillSwitch(model=self.model.name, disabled=True, reason=KILL_SWITCH_UNREADABLE)

    def _follow_champion(self) -> ServingState:
        name = self.model.name
        try:
            checking = time.monotonic()  # what the check reads is as old as its start
            production = verified_production(self.services, name)
            self.verified_at = checking
            # A governed move or flip writes its caches a moment before its ledger event: only a disagreement
            # seen at two polls in a row is an incident.
            confirmed = [i for i in production.incidents if i in self._seen_incidents]
            self._seen_incidents = set(production.incidents)
            record_incidents(self.services, name, confirmed, actor="system:serving")
            champion, move = production.champion, production.move
            self.switched_off_by_record = _switched_off(production)
            unrecorded = [i for i in production.unrecorded_moves if i in confirmed]
        except Exception as exc:  # the record cannot be checked: hold the kill switch on until it can (fail safe)
            # The error names hosts and ports: it stays in the server log; clients see that reading failed.
            self.problem = f"cannot read or verify the signed record of {name!r} (the server log says why)"
            self.switched_off_by_record = self.problem
            log.warning("%s: %s", self.problem, exc)
            metrics.ERRORS.labels(name, "champion_read").inc()
            return self.state
        self.problem = None
        if unrecorded:
            return self._set(ServingState(None, None, unrecorded[0]))
        if production.unrecorded_moves:  # seen once: hold what is served until the next poll confirms or clears it
            return self.state
        if champion is None or move is None:
            return self._set(
                ServingState(None, None, f"model {name!r} has no champion whose deployment the signed record verifies")
            )
        served = self._loaded_or_load(champion, move)
        if isinstance(served, str):
            return self._set(ServingState(champion, None, served))
        return self._set(ServingState(champion, served, None))

    def _loaded_or_load(self, version: int, move: MoveStep) -> ServedVersion | str:
        """The version the verified `move` made champion, loaded, or why it cannot be served (a failed load is
        retried after a while)."""
        approved, evidence_pack = move.artifact, move.evidence_pack
        wanted = (version, approved, evidence_pack)
        if wanted in self._loaded:
            self._loaded.move_to_end(wanted)
            return self._loaded[wanted]
        failed = self._failed
        if failed and failed[0] == wanted and time.monotonic() - failed[1] < RETRY_FAILED_LOAD_SECONDS:
            return failed[2]
        try:
            served = load_version(self.settings, self.registry, self.model, version, approved, evidence_pack)
        except (ArtifactChanged, ThresholdsNotApproved) as exc:  # changed after approval: the record says so
            record_incidents(self.services, self.model.name, [str(exc)], actor="system:serving")
            return self._failed_load(wanted, exc)
        except Exception as exc:
            return self._failed_load(wanted, exc)
        self._failed = None
        self._loaded[wanted] = served
        self._loads += 1
        while len(self._loaded) > KEEP_LOADED:
            self._loaded.popitem(last=False)
        return served

    def _failed_load(self, wanted: Loadable, exc: Exception) -> str:
        """Why the version is not served, as every client reads it: a changed artifact by its digests (ledgered as
        an incident), any other failure only in the log (its text can name the state dir's paths and stores)."""
        key = version_key(self.model.name, wanted[0])
        if isinstance(exc, ArtifactChanged | ThresholdsNotApproved):
            why = f"{key} could not be served: {exc}"
        else:
            log.warning("%s could not be served", key, exc_info=exc)
            why = f"{key} could not be served: loading it failed (the scoring API's log says why)"
        self._failed = (wanted, time.monotonic(), why)
        metrics.ERRORS.labels(self.model.name, "champion_load").inc()
        return why

    def _set(self, state: ServingState) -> ServingState:
        if state != self.state:
            if state.served:
                log.info("%s: serving v%s", self.model.name, state.served.version)
            else:
                log.warning("%s: safe state (refer every application): %s", self.model.name, state.safe_reason)
        self.state = state  # one assignment: requests see the old state or the new one
        return state

    def start(self) -> None:
        self._thread = threading.Thread(target=self._follow, name=f"champion-{self.model.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # never stop following; the state stays as it was
                log.exception("%s: following the champion failed", self.model.name)


def _switched_off(production: Production) -> str | None:
    """Why the signed record holds the kill switch on, whatever its row says; None when it does not."""
    if not production.kill_switch:
        return None
    flip = production.flip
    assert flip is not None
    return f"{flip.actor}'s signed statement holds it on (ledger entry {flip.seq}): {flip.reason or ''}"
