"""The lineage of one model version: data, training, evidence, policy, people and production.

Every step is a ledger entry, cited with its Merkle inclusion proof in the tree
of the ledger's first `size` entries (one root for the whole lineage), and
checked on the way: the entry's fields must hash to its entry hash and the proof
must lead to the root. Steps are linked by digests rather than by payloads, so a
lineage still holds together after retention expired the payloads: the version's
`ModelRegistered` event names the validation digest, the `DataValidated` event
with that digest names the data digest, and the `DataSnapshotted` event with that
digest is the snapshot. Facts also held elsewhere (registry tags, the sealed
evidence pack) are compared, and every disagreement or missing step is a finding.

A lineage proves inclusion under the root it reports. That this root is the root of
an intact chain is what `govern ledger verify` checks, and what the evidence pack's
signed checkpoint (taken after verifying the whole ledger) vouches for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from governance import events as ev
from governance.control import Deployment
from governance.errors import GovernanceError
from governance.events import Event, EventError
from governance.ledger import InclusionProof, LedgerEntry
from governance.lineage.proofs import entry_problem
from governance.objectstore import sealed_pack_dir
from governance.registry import parse_version_key, version_key
from governance.release import evidence_pack
from governance.release.production import (
    FACTS,
    deployed_pack,
    incidents_about,
    move_problem,
    statement_problem,
    verified_moves,
)
from governance.release.requests import requesters
from governance.release.services import Services
from governance.timestamps import utc_timestamp

# Production monitoring's events; they name the version they judged.
MONITORING_EVENTS = (ev.MonitoringReferenceBuilt, ev.WindowJudged, ev.RemediationDecided, ev.RetrainingDecided)
REFUSALS = (
    ev.ApprovalDecisionRefused,
    ev.ReleaseRefused,
    ev.DeploymentRefused,
    ev.KillSwitchRefused,
    ev.WaiverRefused,
    ev.StatementRefused,
    ev.RetrainingRefused,
)


class LineageError(GovernanceError):
    """No lineage can be given for what was asked; the message names the model, version or decision."""


@dataclass(frozen=True)
class Lineage:
    """The lineage document, with every ledger entry it cites and their proofs (one tree: size, root)."""

    document: dict
    entries: dict[int, LedgerEntry]
    proofs: dict[int, InclusionProof]
    size: int
    root: str
    moves: tuple[ev.MoveStep, ...] = ()  # the model's verified moves, as `verified_moves` gives them

    @property
    def summary(self) -> dict:
        return self.document["summary"]


def version_lineage(
    services: Services, model: str, version: str, size: int | None = None, registry: bool = True
) -> Lineage:
    """The lineage of `version` (e.g. credit_scoring-v3) as of the ledger's first `size` entries (default: all).

    `registry=False` leaves out the cross-check against MLflow's registry and run (importing and opening
    MLflow costs seconds; the ledger and the sealed pack already carry the same facts, digest-checked)."""
    owner, number = parse_version_key(version)
    if owner != model:
        raise LineageError(f"{version} is not a version of {model}")
    size = services.ledger.size() if size is None else size
    return _Builder(services, model, version, number, size, with_registry=registry).build()


def _typed(entry: LedgerEntry) -> Event | None:
    """The event an entry records; None for an action no event type declares (it is listed, not interpreted)."""
    try:
        return Event.from_entry(entry)
    except EventError:
        return None


def _iso_ms(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else utc_timestamp(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


@dataclass
class _Builder:
    services: Services
    model: str
    version: str
    number: int
    size: int
    with_registry: bool = True
    findings: list[str] = field(default_factory=list)
    cited: dict[int, dict] = field(default_factory=dict)
    entries: dict[int, LedgerEntry] = field(default_factory=dict)
    proofs: dict[int, InclusionProof] = field(default_factory=dict)
    others: dict[str, list[LedgerEntry]] = field(default_factory=dict)
    root: str = field(init=False)
    own: list[LedgerEntry] = field(init=False)  # every entry naming this version
    moves: list[Deployment] = field(init=False)  # every deployment and rollback row of the model
    completed: list[ev.MoveStep] = field(init=False)  # every completed move in the ledger (up to size)
    governed: set[int] = field(init=False)  # the seqs of those whose authority verifies

    def build(self) -> Lineage:
        ledger = self.services.ledger
        self.root = ledger.root(self.size)
        self.own = [
            e for e in ledger.entries(model=self.model, version=self.version, checked=False) if e.seq <= self.size
        ]  # unchecked: an altered entry is a finding, not an error
        if not self.own:
            raise LineageError(
                f"{self.model} {self.version}: no ledger entry names this version (among the "
                f"first {self.size}); it was not produced by the governed pipeline"
            )
        self.moves = self.services.control.deployments(self.model)
        completed = self.services.ledger.events(ev.MOVE_COMPLETED, model=self.model, checked=FACTS)
        self.completed = [m for m in completed if m.seq <= self.size]
        verified = verified_moves(self.services, self.model)
        self.governed = {m.seq for m in verified}
        registered = self._latest(self.own, ev.ModelRegistered)
        pack = self._evidence_pack(verified)
        registry = self._registry()
        validation, data = self._data(registered, registry)
        document = {
            "model": self.model,
            "version": self.version,
            "registered_version": self.number,
            "ledger": {"size": self.size, "root": self.root},
            "data": data,
            "validation": validation,
            "requested": self._requested(),
            "training": self._training(registered, registry, pack),
            "reports": self._reports(pack),
            "gate": self._gate(pack),
            "waivers": self._waivers(),
            "evidence_pack": pack,
            "approvals": self._approvals(),
            "releases": self._releases(),
            "deployments": self._deployments(),
            "kill_switch": self._kill_switch(),
            "monitoring": self._monitoring(),
            "refusals": self._refusals(),
        }
        self._check_signed_record()
        document["other_events"] = [self.cite(e) for e in self.own if e.seq not in self.cited]
        self._prove_cited()
        document["summary"] = self._summary(document)
        document["findings"] = self.findings
        return Lineage(document, dict(sorted(self.entries.items())), self.proofs, self.size, self.root, tuple(verified))

    # --- ledger entries ------------------------------------------------------------------
    def cite(self, entry: LedgerEntry) -> dict:
        """The entry as the lineage shows it: identity, inclusion proof, and whether both verified (both filled
        in by `_prove_cited`, once every entry is cited)."""
        if entry.seq not in self.cited:
            self.entries[entry.seq] = entry
            self.cited[entry.seq] = {
                "seq": entry.seq,
                "ts": entry.ts,
                "actor": entry.actor,
                "action": entry.action,
                "entry_hash": entry.entry_hash,
                "inclusion_proof": [],
                "verified": False,
                "payload_expired": entry.payload is None,
            }
        return self.cited[entry.seq]

    def _prove_cited(self) -> None:
        """Each cited entry's inclusion proof (read together: one query for the tree's nodes) and whether the
        entry and its proof verify against the root."""
        self.proofs = self.services.ledger.inclusion_proofs(self.entries, self.size) if self.entries else {}
        for seq, proof in sorted(self.proofs.items()):
            problem = entry_problem(self.entries[seq].to_dict(), list(proof.path), self.size, self.root)
            if problem:
                self.findings.append(f"ledger {problem}")
            self.cited[seq].update(inclusion_proof=list(proof.path), verified=problem is None)

    def _model_entries(self, *kinds: type[Event]) -> list[LedgerEntry]:
        found = self.services.ledger.entries(model=self.model, action=ev.actions(*kinds), checked=False)
        return [e for e in found if e.seq <= self.size]

    @staticmethod
    def _of(entries: Iterable[LedgerEntry], *kinds: type[Event]) -> list[tuple[LedgerEntry, Event]]:
        """The entries recording events of these kinds, each with its typed event."""
        return [(e, typed) for e in entries if isinstance(typed := _typed(e), kinds)]

    def _latest(
        self,
        entries: Iterable[LedgerEntry],
        *kinds: type[Event],
        before: int | None = None,
        where: Callable[[Event], bool] = lambda e: True,
    ) -> tuple[LedgerEntry, Event] | tuple[None, None]:
        found = [
            (e, typed) for e, typed in self._of(entries, *kinds) if (before is None or e.seq < before) and where(typed)
        ]
        return found[-1] if found else (None, None)

    def _missing(self, step: str, why: str) -> None:
        self.findings.append(f"missing {step}: {why}")

    def _agree(self, fact: str, **sources: str | None) -> str | None:
        """The value the sources agree on (first given); a finding when they differ."""
        given = {source: value for source, value in sources.items() if value}
        if len(set(given.values())) > 1:
            self.findings.append(f"{fact} differs: " + ", ".join(f"{s} {v}" for s, v in given.items()))
        return next(iter(given.values()), None)

    # --- steps -----------------------------------------------------------------------------
    def _registry(self) -> dict:
        """The registered version and its MLflow run (params, status, times), or {} with a finding."""
        if not self.with_registry:
            return {}
        from mlflow.exceptions import MlflowException

        registry = self.services.registry
        try:
            registered = registry.version(self.model, self.number)
            run = registry.client.get_run(registered.run_id)
        except (GovernanceError, MlflowException) as exc:
            self.findings.append(f"MLflow registry: {self.version} unavailable: {exc}")
            return {}
        return {
            "run_id": registered.run_id,
            "artifact_sha256": registered.artifact_sha256 or None,
            "data_md5": registered.tags.get("governance.data_md5"),
            "code_version": registered.tags.get("governance.code_version"),
            "source": registered.source,
            "params": dict(sorted(run.data.params.items())),
            "status": run.info.status,
            "started_at": _iso_ms(run.info.start_time),
            "ended_at": _iso_ms(run.info.end_time),
        }

    def _data(self, registered: tuple, registry: dict) -> tuple[dict | None, dict | None]:
        entry, trained = registered
        md5 = registry.get("data_md5") or (trained and trained.dvc_md5)
        validation_digest = trained.validation if trained else None

        def same_validation(checked: Event) -> bool:
            assert isinstance(checked, ev.DataChecked)
            return checked.validation == validation_digest if validation_digest else checked.dvc_md5 == md5

        validated_entry, validated = self._latest(
            self._model_entries(ev.DataChecked),
            ev.DataChecked,
            before=entry.seq if entry else None,
            where=same_validation,
        )
        if validated is None:
            self._missing("data validation", f"no data validation event with validation digest {validation_digest}")
            return None, None
        assert isinstance(validated, ev.DataChecked) and validated_entry is not None
        snapshot_entry, snapshot = self._latest(
            self._model_entries(ev.DataSnapshotted),
            ev.DataSnapshotted,
            before=validated.seq,
            where=lambda e: isinstance(e, ev.DataSnapshotted) and e.data == validated.data,
        )
        validation = {
            "passed": isinstance(validated, ev.DataValidated),
            "digest": validation_digest,
            "suite": validated.suite,
            "failed_expectations": validated.failed,
            "entry": self.cite(validated_entry),
        }
        if snapshot is None:
            self._missing("data snapshot", f"no data snapshot event with data digest {validated.data}")
            return validation, None
        assert isinstance(snapshot, ev.DataSnapshotted) and snapshot_entry is not None
        data = {
            "dvc_md5": self._agree("data md5", ledger=snapshot.dvc_md5, registry=md5),
            "sha256": validated.data,
            "source": snapshot.source,
            "rows": snapshot.rows,
            "columns": snapshot.columns,
            "entry": self.cite(snapshot_entry),
        }
        return validation, data

    def _training(self, registered: tuple, registry: dict, pack: dict | None) -> dict | None:
        entry, trained = registered
        if trained is None:
            self._missing("training", f"no model registration event for {self.version}")
            return None
        assert isinstance(trained, ev.ModelRegistered)
        facts = (pack or {}).get("facts") or {}
        agreed = {  # name (as the pack's facts say it), what a finding calls it, the ledger's, the registry's key
            name: self._agree(label, ledger=recorded, registry=registry.get(held), evidence_pack=facts.get(name))
            for name, label, recorded, held in (
                ("mlflow_run_id", "MLflow run id", trained.mlflow_run_id, "run_id"),
                ("code_version", "code version", trained.code_version, "code_version"),
                ("artifact_sha256", "model artifact digest", trained.artifact, "artifact_sha256"),
                ("data_md5", "training data md5", trained.dvc_md5, "data_md5"),
            )
        }
        return {
            **agreed,
            "params": registry.get("params") or trained.params,
            "run_status": registry.get("status"),
            "started_at": registry.get("started_at"),
            "ended_at": registry.get("ended_at"),
            "artifact_source": registry.get("source"),
            "entry": self.cite(entry),
        }

    def _reports(self, pack: dict | None) -> list[dict]:
        sealed = (pack or {}).get("files") or {}
        found = []
        for name, kind in ev.REPORT_EVENTS.items():
            entry, report = self._latest(self.own, kind)
            if report is None:
                self._missing(f"{name} report", f"no {kind.__name__} event")
                continue
            assert isinstance(report, ev.ReportPublished) and entry is not None
            found.append(
                {
                    "report": name,
                    "sha256": report.report,
                    "sealed": sealed.get(f"{name}.json") == report.report,
                    "entry": self.cite(entry),
                }
            )
        entry, card = self._latest(self.own, ev.CardPublished)
        if card is None:
            self._missing("model card", "no CardPublished event")
        else:
            assert isinstance(card, ev.CardPublished) and entry is not None
            found.append(
                {
                    "report": "model_card",
                    "sha256": card.html,
                    "markdown_sha256": card.markdown,
                    "complete": card.complete,
                    "sealed": sealed.get("model_card.html") == card.html,
                    "entry": self.cite(entry),
                }
            )
        return found

    def _gate(self, pack: dict | None) -> dict | None:
        sealed_gate = ((pack or {}).get("facts") or {}).get("gate_ledger_entry")
        self._gate_contradictions(sealed_gate)
        entry, gate = self._latest(self.own, ev.GateDecided, where=lambda e: e.entry_hash == sealed_gate)
        if gate is None:
            entry, gate = self._latest(self.own, ev.GateDecided)
        if gate is None:
            self._missing("release gate", "no GateDecided event")
            return None
        assert isinstance(gate, ev.GateDecided) and entry is not None
        decision = gate.decision or {}
        return {
            "allowed": gate.allowed,
            "policy_digest": gate.policy,
            "evidence_digest": gate.evidence,
            "decided_at": decision.get("decided_at"),
            "rules_evaluated": decision.get("rules_evaluated"),
            "denials": [
                {"rule": d["rule"], "message": d["message"], "unwaivable": d["unwaivable"], "waiver": d["waiver"]}
                for d in decision.get("denials", [])
            ],
            "sealed": gate.entry_hash == sealed_gate,
            "entry": self.cite(entry),
        }

    def _gate_contradictions(self, sealed_gate: str | None) -> None:
        """Gate entries are unsigned, so a ledger writer can append one (naming the approver as trainer, say). It
        changes nothing (who may approve is read from the decision sealed in the pack an approval signed), but is
        reported: an entry whose facts contradict the decision it records, or another entry on the same evidence
        (the evidence digest binds the tier, the trainers and the requesters), the sealed entry first."""
        gates = sorted(self._of(self.own, ev.GateDecided), key=lambda g: (g[0].entry_hash != sealed_gate, g[0].seq))
        first: dict[str, tuple[int, tuple]] = {}
        for entry, gate in gates:
            assert isinstance(gate, ev.GateDecided)
            facts = (gate.evidence, gate.risk_tier, tuple(gate.trained_by), tuple(gate.requested_by))
            recorded = gate.decision
            if recorded is not None and facts != (
                recorded.get("evidence_digest"),
                recorded.get("risk_tier"),
                tuple(recorded.get("trained_by", ())),
                tuple(recorded.get("requested_by", ())),
            ):
                self.findings.append(
                    f"{ev.GateDecided.action} #{entry.seq}: its facts contradict the decision it records"
                )
            seq, agreed = first.setdefault(gate.evidence, (entry.seq, facts))
            if agreed != facts:
                self.findings.append(
                    f"{ev.GateDecided.action} #{entry.seq} names tier {gate.risk_tier}, trainers {list(gate.trained_by)} and "
                    f"requesters {list(gate.requested_by)} for the evidence #{seq} judged with tier {agreed[1]}, "
                    f"trainers {list(agreed[2])} and requesters {list(agreed[3])}: a forged or altered gate entry"
                )

    def _waivers(self) -> list[dict]:
        return [
            {
                "rule": w.rule,
                "until": w.until,
                "granted_by": w.actor,
                "statement_digest": w.statement,
                "policy_digest": w.policy,
                "entry": self.cite(e),
            }
            for e, w in self._of(self.own, ev.WaiverGranted)
            if isinstance(w, ev.WaiverGranted)
        ]

    def _requested(self) -> dict:
        """Who verifiably asked for the version (signed candidate requests), or that nobody is known to have;
        a request entry whose signed statement does not verify is a finding."""
        asked = requesters(self.services, self.model, self.version)
        self.findings += [f"candidate request: {problem}" for problem in asked.unverified]
        return {
            "by": list(asked.verified),
            "known": asked.known,
            "text": asked.describe(),
            "entries": [self.cite(e) for e, _ in self._of(self.own, ev.CandidateRequested)],
        }

    def _evidence_pack(self, verified: list[ev.MoveStep]) -> dict | None:
        """The pack the version's latest verified move deployed (the approval it relied on signed that digest),
        else the latest one requested for approval. Request entries are unsigned: a later one naming another pack
        does not change what production relied on; it is shown as pending."""
        deployed = deployed_pack(verified, self.version)
        entry, request = self._latest(
            self.own, ev.ApprovalRequested, where=lambda r: deployed in (None, getattr(r, "evidence_pack", None))
        )
        if request is None:
            if deployed is not None:
                self.findings.append(f"evidence pack {deployed[:12]}, deployed, was never requested for approval")
            return None
        assert isinstance(request, ev.ApprovalRequested) and entry is not None
        _, latest = self._latest(self.own, ev.ApprovalRequested)
        pending = latest.evidence_pack if isinstance(latest, ev.ApprovalRequested) else None
        path = sealed_pack_dir(self.services.settings, self.model, self.version, request.evidence_pack)
        found = {
            "digest": request.evidence_pack,
            "path": str(path),
            "requested_at": request.ts,
            "facts": None,
            "files": None,
            "entry": self.cite(entry),
            "deployed": deployed is not None,
            "pending": pending if pending != request.evidence_pack else None,  # a later request, not yet approved
        }
        try:
            pack = evidence_pack.verify(path, request.evidence_pack)
        except (GovernanceError, OSError, ValueError) as exc:
            found["status"] = f"DOES NOT VERIFY: {exc}"
            self.findings.append(f"sealed evidence pack {request.evidence_pack}: {exc}")
            return found
        return {**found, "status": "verified", "facts": pack.facts, "files": pack.manifest["files"]}

    def _statements(self) -> dict:
        return {
            r.digest: r.signed.statement for r in self.services.statements.find(model=self.model, version=self.version)
        }

    def _approvals(self) -> list[dict]:
        statements = self._statements()
        relied_on: dict[str, list[int]] = {}
        for move in self.moves:
            relied_on.setdefault(move.approval_digest, []).append(move.id)
        found = []
        for e, decided in self._of(self.own, ev.ApprovalDecided):
            assert isinstance(decided, ev.ApprovalDecided)
            statement = statements.get(decided.statement)
            found.append(
                {
                    "decision": "granted" if isinstance(decided, ev.ApprovalGranted) else "rejected",
                    "approver": decided.actor,
                    "roles": list(decided.roles),
                    "signed_at": utc_timestamp(statement.issued_at) if statement else None,
                    "recorded_at": e.ts,
                    "statement_digest": decided.statement,
                    "evidence_pack": decided.evidence_pack,
                    "policy_digest": decided.policy,
                    "comment": statement.comment if statement else decided.comment,
                    "relied_on_by_deployments": relied_on.get(decided.statement, []),
                    "entry": self.cite(e),
                }
            )
        return found

    def _releases(self) -> list[dict]:
        return [
            {"approver": r.approver, "by": r.actor, "statement_digest": r.statement, "entry": self.cite(e)}
            for e, r in self._of(self.own, ev.ReleaseApproved)
            if isinstance(r, ev.ReleaseApproved)
        ]

    def _deployments(self) -> list[dict]:
        found = []
        for move in self.moves:
            if self.number not in (move.version, move.previous_version):
                continue
            steps = self._move_steps(move)
            reason = next((step.reason for _, step in steps if step.reason), None)
            statement = next((step.statement for _, step in steps if step.statement), None)
            signed = [
                e
                for e, recorded in self._of(
                    self._version_entries(version_key(self.model, move.version)), ev.StatementRecorded
                )
                if statement and isinstance(recorded, ev.StatementRecorded) and recorded.statement == statement
            ]
            found.append(
                {
                    "id": move.id,
                    "kind": move.kind,
                    "status": move.status,
                    "to": version_key(self.model, move.version),
                    "from": version_key(self.model, move.previous_version) if move.previous_version else None,
                    "direction": "to this version" if move.version == self.number else "away from this version",
                    "actor": move.actor,
                    "automated": move.actor.startswith("system:"),
                    "reason": reason,
                    "started_at": move.started_at,
                    "finished_at": move.finished_at,
                    "artifact_sha256": move.artifact_sha256,
                    "approval_statement": move.approval_digest,
                    "statement_digest": statement,
                    "entries": [self.cite(e) for e in signed + [e for e, _ in steps]],
                }
            )
        return found

    def _move_steps(self, move: Deployment) -> list[tuple[LedgerEntry, ev.MoveStep]]:
        return [
            (e, step)
            for e, step in self._of(self._version_entries(version_key(self.model, move.version)), ev.MoveStep)
            if isinstance(step, ev.MoveStep) and step.deployment_id == move.id
        ]

    def _version_entries(self, version: str) -> list[LedgerEntry]:
        """Entries naming `version` (this one, or another a move went to), read once per version."""
        if version == self.version:
            return self.own
        if version not in self.others:
            self.others[version] = [
                e
                for e in self.services.ledger.entries(model=self.model, version=version, checked=False)
                if e.seq <= self.size
            ]
        return self.others[version]

    def _champion_periods(self) -> list[tuple[str, str | None]]:
        """When this version was the governed champion, from the ledger's completed moves (never the rows): from
        each verified move to it until the next completed move (a move that does not verify ends it too: serving
        then answers in the safe state)."""
        done = self.completed
        return [
            (m.ts, done[i + 1].ts if i + 1 < len(done) else None)
            for i, m in enumerate(done)
            if m.seq in self.governed and m.version == self.version
        ]

    def _kill_switch(self) -> dict:
        periods = self._champion_periods()
        flips = [
            (e, flip)
            for e, flip in self._of(self._model_entries(ev.KillSwitchFlipped), ev.KillSwitchFlipped)
            if any(start <= e.ts and (end is None or e.ts < end) for start, end in periods)
        ]
        return {
            "champion_periods": [{"from": start, "to": end} for start, end in periods],
            "events": [
                {
                    "state": "on" if isinstance(flip, ev.KillSwitchOn) else "off",
                    "by": flip.actor,
                    "at": e.ts,
                    "reason": getattr(flip, "reason", None),
                    "entry": self.cite(e),
                }
                for e, flip in flips
            ],
        }

    def _monitoring(self) -> list[dict]:
        return [
            {
                "action": e.action,
                "by": e.actor,
                "at": e.ts,
                "digests": e.digests,
                "facts": e.facts,
                "details": e.payload,
                "entry": self.cite(e),
            }
            for e, _ in self._of(self.own, *MONITORING_EVENTS)
        ]

    def _refusals(self) -> list[dict]:
        return [
            {
                "action": e.action,
                "by": e.actor,
                "at": e.ts,
                "reason": getattr(refused, "reason", None) or getattr(refused, "reasons", None),
                "entry": self.cite(e),
            }
            for e, refused in self._of(self.own, *REFUSALS)
        ]

    def _check_signed_record(self) -> None:
        """Every approval, waiver and move of this version against the signed statement behind it (a forged,
        re-hashed entry passes the chain but not this), and production's disagreements with the record."""
        services, roster = self.services, self.services.roster
        for _, decided in self._of(self.own, ev.ApprovalDecided):
            assert isinstance(decided, ev.ApprovalDecided)
            action = "approve" if isinstance(decided, ev.ApprovalGranted) else "reject"
            problem = statement_problem(
                services,
                roster,
                decided.statement,
                action,
                signer=decided.actor,
                model=self.model,
                version=self.version,
                evidence_digest=decided.evidence_pack,
            )
            if problem:
                self.findings.append(f"{decided.action} #{decided.seq} by {decided.actor}: {problem}")
        for _, waiver in self._of(self.own, ev.WaiverGranted):
            assert isinstance(waiver, ev.WaiverGranted)
            problem = statement_problem(
                services,
                roster,
                waiver.statement,
                "waive",
                signer=waiver.actor,
                model=self.model,
                version=self.version,
                rule=waiver.rule,
            )
            if problem:
                self.findings.append(f"{waiver.action} #{waiver.seq} by {waiver.actor}: {problem}")
        for _, move in self._of(self.own, *ev.MOVE_COMPLETED):
            assert isinstance(move, ev.MoveStep)
            problem = None if move.seq in self.governed else move_problem(services, roster, move)  # verified above
            if problem:
                self.findings.append(f"{move.action} #{move.seq}: {problem}")
        self._unfinished_moves()
        self.findings += [f"production incident: {i}" for i in incidents_about(services, self.model, self.number)]

    def _unfinished_moves(self) -> None:
        """A started move the ledger records no end of, while no deployment row says it is under way: recovery
        ledgers an end for every move it finds started, so such an entry was appended or its end removed."""
        steps = [m for _, m in self._of(self.own, ev.MoveStep) if isinstance(m, ev.MoveStep)]
        ended = {m.deployment_id for m in steps if m.step != "started"}
        running = {d.id for d in self.services.control.deployments(self.model, "started")}
        for move in steps:
            if move.step == "started" and move.deployment_id not in ended | running:
                self.findings.append(
                    f"{move.action} #{move.seq}: deployment #{move.deployment_id} was started, but the ledger "
                    "records neither its completion nor its abort"
                )

    def _summary(self, document: dict) -> dict:
        approvals = [a for a in document["approvals"] if a["decision"] == "granted"]
        relied = [a for a in approvals if a["relied_on_by_deployments"]]
        approval = (relied or approvals or [None])[-1]
        training, pack, data = document["training"] or {}, document["evidence_pack"] or {}, document["data"] or {}
        return {
            "status": self._status(document),
            "data_md5": data.get("dvc_md5") or training.get("data_md5"),
            "data_source": data.get("source"),
            "mlflow_run_id": training.get("mlflow_run_id"),
            "code_version": training.get("code_version"),
            "artifact_sha256": training.get("artifact_sha256"),
            "policy_digest": (document["gate"] or {}).get("policy_digest"),
            "evidence_pack_digest": pack.get("digest"),
            "approver": approval and approval["approver"],
            "approver_roles": approval and approval["roles"],
            "approved_at": approval and approval["signed_at"],
            "approval_statement": approval and approval["statement_digest"],
        }

    def _status(self, document: dict) -> str:
        if self._champion_periods():
            last = self.completed[-1]
            if last.seq not in self.governed:
                return f"not the champion: the latest move (#{last.seq} to {last.version}) does not verify (safe state)"
            if last.version == self.version:
                return "champion"
            return f"not the champion: {last.version} is ({last.kind} at {last.ts})"
        if any(a["decision"] == "granted" for a in document["approvals"]):
            return "approved, not deployed"
        if document["evidence_pack"]:
            return "pending approval"
        gate = document["gate"]
        if gate:
            return {True: "gate passed", False: "gate denied"}.get(gate["allowed"], "gate decided (payload expired)")
        return "registered"
