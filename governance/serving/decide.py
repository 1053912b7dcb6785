"""Making and logging decisions for one model, a batch at a time.

A batch is scored with one `predict_proba` and one SHAP call and written to the
decision log in one transaction, committed before any of its answers is
returned. The kill switch is read for every batch, so a flip is honoured by the
next batch. In the safe state (kill switch on, no servable champion, or a model
that failed to score) every application is referred to manual review: never an
automated decline, no score, no reasons, and still logged. So is a single
application whose attributions do not add up to its score; the rest of its
batch is decided as usual.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

import pandas as pd

from governance.config import GovernedModel
from governance.control import ControlStore, KillSwitch
from governance.decisions import DecisionLog
from governance.digests import digest_of
from governance.serving import metrics
from governance.serving.champion import KILL_SWITCH_UNREADABLE, ChampionFollower, ServedVersion
from governance.timestamps import utc_timestamp

log = logging.getLogger(__name__)

APPROVE, DECLINE, REFER = "approve", "decline", "refer"


@dataclass(frozen=True)
class Application:
    """One validated request: every feature, and the protected attributes sent (only if collected)."""

    features: dict
    protected: dict | None


class DecisionMaker:
    def __init__(
        self, model: GovernedModel, follower: ChampionFollower, control: ControlStore, decision_log: DecisionLog
    ) -> None:
        self.model, self.follower, self.control, self.log = model, follower, control, decision_log
        self.features = model.feature_columns  # resolved once (derived from the contract on every access)

    def decide(self, applications: list[Application]) -> list[dict]:
        """Decide every application, log all of them in one commit, and return the answers in order."""
        state, switch = self.follower.state, self._kill_switch()
        cause: str | None
        if switch.disabled:
            answers, cause = self._safe(applications, f"kill switch on: {switch.reason}"), "kill_switch"
        elif state.served is None:
            answers, cause = (
                self._safe(applications, state.safe_reason or "no servable champion"),
                "no_servable_champion",
            )
        else:
            answers, cause = self._scored_or_safe(state.served, applications)
        ts = utc_timestamp()
        for answer in answers:
            answer["ts"] = ts
        self.log.record_many(
            [
                _row(self.model.name, app, answer, switch.disabled)
                for app, answer in zip(applications, answers, strict=True)
            ]
        )
        for answer in answers:  # logged, not told: the applicant gets the reasons given
            del answer["reasons_withheld"]
        self._count(answers, cause)
        return answers

    def _count(self, answers: list[dict], safe_state_cause: str | None) -> None:
        name = self.model.name
        for answer in answers:
            metrics.DECISIONS.labels(name, answer["outcome"]).inc()
        if safe_state_cause:
            metrics.SAFE_STATE.labels(name, safe_state_cause).inc(sum(a["safe_state"] for a in answers))
        metrics.BATCH_SIZE.labels(name).observe(len(answers))

    def _kill_switch(self) -> KillSwitch:
        """The row, read per batch so a flip takes effect at once; on whenever the signed record holds it on
        (an edited row lifts nothing)."""
        try:
            return self.follower.in_force(self.control.kill_switch(self.model.name))
        except Exception as exc:  # deny by default: an unreadable kill switch counts as on
            log.error("%s: cannot read the kill switch: %s", self.model.name, exc)
            metrics.ERRORS.labels(self.model.name, "kill_switch_read").inc()
            return KillSwitch(model=self.model.name, disabled=True, reason=KILL_SWITCH_UNREADABLE)

    def _scored_or_safe(self, served: ServedVersion, applications: list[Application]) -> tuple[list[dict], str | None]:
        try:
            answers = self._scored(served, applications)
        except Exception as exc:
            log.exception("%s v%s: scoring failed", self.model.name, served.version)
            metrics.ERRORS.labels(self.model.name, "scoring").inc()
            # The exception's text stays in the server log: it may quote an input value.
            return (
                self._safe(applications, f"v{served.version} failed to score ({type(exc).__name__})"),
                "scoring_failed",
            )
        unexplained = sum(a["safe_state"] for a in answers)
        if not unexplained:
            return answers, None
        log.error(
            "%s v%s: the attributions of %d of %d applications do not add up to their scores; referred",
            self.model.name,
            served.version,
            unexplained,
            len(answers),
        )
        metrics.ERRORS.labels(self.model.name, "explanation").inc()
        return answers, "explanation_failed"

    def _scored(self, served: ServedVersion, applications: list[Application]) -> list[dict]:
        """Scored answers; an application whose attributions miss its score gets the safe state's answer alone
        (its reasons would misstate the model), whatever the rest of its batch gets."""
        frame = pd.DataFrame([a.features for a in applications], columns=self.features)
        explanation = served.explainer.explain(frame)  # one pass through the preprocessing
        reasons = served.reasons.principal(explanation.attributions)
        outcomes = [self._outcome(score) for score in explanation.scores]
        return [
            self._answer(served.version, float(score), outcome, _principal(outcome, why.given), None, len(why.withheld))
            if faithful
            else self._answer(
                None,
                None,
                REFER,
                [],
                f"v{served.version} could not explain this application: its attributions miss its score by {gap:.3g}",
            )
            for score, outcome, why, faithful, gap in zip(
                explanation.scores, outcomes, reasons, explanation.faithful, explanation.gaps
            )
        ]

    def _outcome(self, score: float) -> str:
        rule = self.model.decisioning
        if score < rule.approve_below:
            return APPROVE
        return DECLINE if score >= rule.decline_at_or_above else REFER

    def _safe(self, applications: list[Application], reason: str) -> list[dict]:
        return [self._answer(None, None, REFER, [], reason) for _ in applications]

    def _answer(
        self,
        version: int | None,
        score: float | None,
        outcome: str,
        reasons: list[dict],
        safe_reason: str | None,
        withheld: int | None = None,
    ) -> dict:
        return {
            "decision_id": str(uuid.uuid4()),
            "model": self.model.name,
            "version": version,
            "score": score,
            "outcome": outcome,
            "reasons": reasons,
            "reasons_withheld": withheld,
            "safe_state": safe_reason is not None,
            "safe_state_reason": safe_reason,
        }


def input_digest(application: Application) -> str:
    """SHA-256 of the canonical JSON of the validated request: every feature (nulls included) plus any
    protected attributes sent, as one flat object."""
    return digest_of({**application.features, **(application.protected or {})})


def _principal(outcome: str, reasons: list[dict]) -> list[dict]:
    """The reasons an answer gives: adverse-action reasons (what pushed the score towards decline) explain a
    decline or a referral; an approval takes no adverse action, so it states none."""
    return [] if outcome == APPROVE else reasons


def _row(model: str, application: Application, answer: dict, kill_switch: bool) -> dict:
    """The decision log row (DecisionLog.record_many's fields)."""
    return {
        "decision_id": answer["decision_id"],
        "ts": answer["ts"],
        "model": model,
        "version": answer["version"],
        "input_digest": input_digest(application),
        "features": application.features,
        "protected": application.protected,
        "score": answer["score"],
        "outcome": answer["outcome"],
        "reasons": answer["reasons"],
        "reasons_withheld": answer["reasons_withheld"],
        "kill_switch": kill_switch,
        "safe_state_reason": answer["safe_state_reason"],
    }
