"""The lineage of one model version: data, training, evidence, policy, people and production.

Every step is a ledger entry, cited with its Merkle inclusion proof in the tree
of the ledger's first `size` entries (one root for the whole lineage), and
checked on the way: the entry's fields must hash to its entry hash and the proof
must lead to the root. Steps are linked by digests rather than by payloads, so a
lineage still holds together after retention expired the payloads: the version's
`model.registered` entry names the validation digest, the `data.validated` entry
with that digest names the data digest, and the `data.snapshot` entry with that
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

from governance.control import Deployment
from governance.errors import GovernanceError
from governance.ledger import InclusionProof, LedgerEntry
from governance.lineage.proofs import entry_problem
from governance.registry import parse_version_key, version_key
from governance.release import evidence_pack
from governance.release.services import Services
from governance.timestamps import utc_timestamp

REPORTS = ("performance", "fairness", "explainability")
# Action families of production monitoring; their entries must name the version (subject.version).
MONITORING_FAMILIES = frozenset({"monitoring", "drift", "alert", "remediation", "retraining"})
MOVES = ("deploy", "rollback")


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

    @property
    def summary(self) -> dict:
        return self.document["summary"]


def version_lineage(services: Services, model: str, version: str, size: int | None = None,
                    registry: bool = True) -> Lineage:
    """The lineage of `version` (e.g. credit_scoring-v3) as of the ledger's first `size` entries (default: all).

    `registry=False` leaves out the cross-check against MLflow's registry and run (importing and opening
    MLflow costs seconds; the ledger and the sealed pack already carry the same facts, digest-checked)."""
    owner, number = parse_version_key(version)
    if owner != model:
        raise LineageError(f"{version} is not a version of {model}")
    return _Builder(services, model, version, number, size, with_registry=registry).build()


def _family(action: str) -> str:
    return action.split(".", 1)[0]


def _iso_ms(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else utc_timestamp(datetime.fromtimestamp(epoch_ms / 1000, tz=UTC))


@dataclass
class _Builder:
    services: Services
    model: str
    version: str
    number: int
    size: int | None
    with_registry: bool = True
    findings: list[str] = field(default_factory=list)
    cited: dict[int, dict] = field(default_factory=dict)
    entries: dict[int, LedgerEntry] = field(default_factory=dict)
    proofs: dict[int, InclusionProof] = field(default_factory=dict)
    others: dict[str, list[LedgerEntry]] = field(default_factory=dict)
    root: str = field(init=False)
    own: list[LedgerEntry] = field(init=False)  # every entry naming this version
    moves: list[Deployment] = field(init=False)  # every deployment and rollback of the model

    def build(self) -> Lineage:
        ledger = self.services.ledger
        self.size = ledger.size() if self.size is None else self.size
        self.root = ledger.root(self.size)
        self.own = [e for e in ledger.entries(model=self.model, version=self.version, checked=False)
                    if e.seq <= self.size]  # unchecked: an altered entry is a finding, not an error
        if not self.own:
            raise LineageError(f"{self.model} {self.version}: no ledger entry names this version (among the "
                               f"first {self.size}); it was not produced by the governed pipeline")
        self.moves = self.services.control.deployments(self.model)
        registered = self._latest(self.own, "model.registered")
        pack = self._evidence_pack()
        registry = self._registry()
        validation, data = self._data(registered, registry)
        document = {
            "model": self.model, "version": self.version, "registered_version": self.number,
            "ledger": {"size": self.size, "root": self.root},
            "data": data, "validation": validation,
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
        document["other_events"] = [self.cite(e) for e in self.own if e.seq not in self.cited]
        document["summary"] = self._summary(document)
        document["findings"] = self.findings
        return Lineage(document, dict(sorted(self.entries.items())), self.proofs, self.size, self.root)

    # --- ledger entries ------------------------------------------------------------------
    def cite(self, entry: LedgerEntry) -> dict:
        """The entry as the lineage shows it: identity, inclusion proof, and whether both verified."""
        if entry.seq not in self.cited:
            proof = self.services.ledger.inclusion_proof(entry.seq, self.size)
            problem = entry_problem(entry.to_dict(), list(proof.path), self.size, self.root)
            if problem:
                self.findings.append(f"ledger {problem}")
            self.entries[entry.seq], self.proofs[entry.seq] = entry, proof
            self.cited[entry.seq] = {"seq": entry.seq, "ts": entry.ts, "actor": entry.actor, "action": entry.action,
                                     "entry_hash": entry.entry_hash, "inclusion_proof": list(proof.path),
                                     "verified": problem is None, "payload_expired": entry.payload is None}
        return self.cited[entry.seq]

    def _model_entries(self, *actions: str) -> list[LedgerEntry]:
        found = [e for action in actions
                 for e in self.services.ledger.entries(model=self.model, action=action, checked=False)]
        return sorted((e for e in found if e.seq <= self.size), key=lambda e: e.seq)

    @staticmethod
    def _latest(entries: Iterable[LedgerEntry], *actions: str, before: int | None = None,
                where: Callable[[LedgerEntry], bool] = lambda e: True) -> LedgerEntry | None:
        found = [e for e in entries if e.action in actions and (before is None or e.seq < before) and where(e)]
        return found[-1] if found else None

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
        return {"run_id": registered.run_id, "artifact_sha256": registered.artifact_sha256 or None,
                "data_md5": registered.tags.get("governance.data_md5"),
                "code_version": registered.tags.get("governance.code_version"),
                "source": registered.source, "params": dict(sorted(run.data.params.items())),
                "status": run.info.status, "started_at": _iso_ms(run.info.start_time),
                "ended_at": _iso_ms(run.info.end_time)}

    def _data(self, registered: LedgerEntry | None, registry: dict) -> tuple[dict | None, dict | None]:
        md5 = registry.get("data_md5") or (registered and (registered.payload or {}).get("dvc_md5"))
        validation_digest = registered.digests.get("validation") if registered else None

        def same_validation(entry: LedgerEntry) -> bool:
            if validation_digest:
                return entry.digests.get("validation") == validation_digest
            return (entry.payload or {}).get("dvc_md5") == md5

        validated = self._latest(self._model_entries("data.validated", "data.rejected"), "data.validated",
                                 "data.rejected", before=registered.seq if registered else None, where=same_validation)
        if validated is None:
            self._missing("data validation", f"no data.validated entry with validation digest {validation_digest}")
            return None, None
        data_digest = validated.digests.get("data")
        snapshot = self._latest(self._model_entries("data.snapshot"), "data.snapshot", before=validated.seq,
                                where=lambda e: e.digests.get("data") == data_digest)
        payload = validated.payload or {}
        validation = {"passed": validated.action == "data.validated", "digest": validation_digest,
                      "suite": payload.get("suite"), "failed_expectations": payload.get("failed"),
                      "entry": self.cite(validated)}
        if snapshot is None:
            self._missing("data snapshot", f"no data.snapshot entry with data digest {data_digest}")
            return validation, None
        facts = snapshot.payload or {}
        data = {"dvc_md5": self._agree("data md5", ledger=facts.get("dvc_md5"), registry=md5),
                "sha256": data_digest, "source": facts.get("source"), "rows": facts.get("rows"),
                "columns": facts.get("columns"), "entry": self.cite(snapshot)}
        return validation, data

    def _training(self, registered: LedgerEntry | None, registry: dict, pack: dict | None) -> dict | None:
        if registered is None:
            self._missing("training", f"no model.registered entry for {self.version}")
            return None
        payload, facts = registered.payload or {}, (pack or {}).get("facts") or {}
        return {
            "mlflow_run_id": self._agree("MLflow run id", ledger=payload.get("mlflow_run_id"),
                                         registry=registry.get("run_id"), evidence_pack=facts.get("mlflow_run_id")),
            "code_version": self._agree("code version", ledger=payload.get("code_version"),
                                        registry=registry.get("code_version"), evidence_pack=facts.get("code_version")),
            "artifact_sha256": self._agree("model artifact digest", ledger=registered.digests.get("artifact"),
                                           registry=registry.get("artifact_sha256"),
                                           evidence_pack=facts.get("artifact_sha256")),
            "data_md5": self._agree("training data md5", ledger=payload.get("dvc_md5"),
                                    registry=registry.get("data_md5"), evidence_pack=facts.get("data_md5")),
            "params": registry.get("params") or payload.get("params"), "run_status": registry.get("status"),
            "started_at": registry.get("started_at"), "ended_at": registry.get("ended_at"),
            "artifact_source": registry.get("source"), "entry": self.cite(registered),
        }

    def _reports(self, pack: dict | None) -> list[dict]:
        sealed = (pack or {}).get("files") or {}
        found = []
        for name in REPORTS:
            entry = self._latest(self.own, f"report.{name}")
            if entry is None:
                self._missing(f"{name} report", f"no report.{name} entry")
                continue
            digest = entry.digests.get("report")
            found.append({"report": name, "sha256": digest, "sealed": sealed.get(f"{name}.json") == digest,
                          "entry": self.cite(entry)})
        card = self._latest(self.own, "card.published")
        if card is None:
            self._missing("model card", "no card.published entry")
        else:
            found.append({"report": "model_card", "sha256": card.digests.get("html"),
                          "markdown_sha256": card.digests.get("markdown"),
                          "complete": (card.payload or {}).get("complete"),
                          "sealed": sealed.get("model_card.html") == card.digests.get("html"),
                          "entry": self.cite(card)})
        return found

    def _gate(self, pack: dict | None) -> dict | None:
        sealed_gate = ((pack or {}).get("facts") or {}).get("gate_ledger_entry")
        gate = (self._latest(self.own, "gate.decision", where=lambda e: e.entry_hash == sealed_gate)
                or self._latest(self.own, "gate.decision"))
        if gate is None:
            self._missing("release gate", "no gate.decision entry")
            return None
        decision = gate.payload or {}
        return {"allowed": decision.get("allowed"), "policy_digest": gate.digests.get("policy"),
                "evidence_digest": gate.digests.get("evidence"), "decided_at": decision.get("decided_at"),
                "rules_evaluated": decision.get("rules_evaluated"),
                "denials": [{"rule": d["rule"], "message": d["message"], "unwaivable": d["unwaivable"],
                             "waiver": d["waiver"]} for d in decision.get("denials", [])],
                "sealed": gate.entry_hash == sealed_gate, "entry": self.cite(gate)}

    def _waivers(self) -> list[dict]:
        return [{"rule": e.subject.get("rule"), "until": e.subject.get("until"), "granted_by": e.actor,
                 "statement_digest": e.digests.get("statement"), "policy_digest": e.digests.get("policy"),
                 "entry": self.cite(e)} for e in self.own if e.action == "waiver.granted"]

    def _evidence_pack(self) -> dict | None:
        request = self._latest(self.own, "approval.requested")
        if request is None:
            return None
        payload, digest = request.payload or {}, request.digests.get("evidence_pack")
        # Where approval_request seals packs (by digest), for when retention expired the request's payload.
        sealed_at = self.services.settings.model_dir(self.model, self.version) / "evidence" / digest
        found = {"digest": digest, "path": payload.get("pack_path") or (str(sealed_at) if sealed_at.is_dir() else None),
                 "requested_by": payload.get("requested_by"), "requested_at": request.ts, "facts": None,
                 "files": None, "entry": self.cite(request)}
        if not found["path"]:
            found["status"] = "not found: the request's payload expired and the pack is not where it was sealed"
            self.findings.append(f"sealed evidence pack {digest}: {found['status']}")
            return found
        try:
            pack = evidence_pack.verify(found["path"], digest)
        except (GovernanceError, OSError, ValueError) as exc:
            found["status"] = f"DOES NOT VERIFY: {exc}"
            self.findings.append(f"sealed evidence pack {digest}: {exc}")
            return found
        return {**found, "status": "verified", "facts": pack.facts, "files": pack.manifest["files"]}

    def _statements(self) -> dict:
        return {r.digest: r.signed.statement for r in self.services.statements.find(model=self.model,
                                                                                  version=self.version)}

    def _approvals(self) -> list[dict]:
        statements = self._statements()
        relied_on = {}
        for move in self.moves:
            relied_on.setdefault(move.approval_digest, []).append(move.id)
        found = []
        for e in self.own:
            if e.action not in ("approval.granted", "approval.rejected"):
                continue
            digest, statement = e.digests.get("statement"), statements.get(e.digests.get("statement"))
            found.append({
                "decision": e.action.split(".")[1], "approver": e.actor, "roles": (e.payload or {}).get("roles"),
                "signed_at": utc_timestamp(statement.issued_at) if statement else None, "recorded_at": e.ts,
                "statement_digest": digest, "evidence_pack": e.digests.get("evidence_pack"),
                "policy_digest": e.digests.get("policy"),
                "comment": statement.comment if statement else (e.payload or {}).get("comment"),
                "relied_on_by_deployments": relied_on.get(digest, []), "entry": self.cite(e)})
        return found

    def _releases(self) -> list[dict]:
        return [{"approver": (e.payload or {}).get("approver"), "by": e.actor,
                 "statement_digest": e.digests.get("statement"), "entry": self.cite(e)}
                for e in self.own if e.action == "release.approved"]

    def _deployments(self) -> list[dict]:
        found = []
        for move in self.moves:
            if self.number not in (move.version, move.previous_version):
                continue
            entries = self._move_entries(move)
            reason = next((e.payload["reason"] for e in entries if (e.payload or {}).get("reason")), None)
            statement = next((e.payload["statement_digest"] for e in entries
                              if (e.payload or {}).get("statement_digest")), None)
            signed = [e for e in self._version_entries(version_key(self.model, move.version))
                      if statement and e.action == "statement.recorded" and e.digests.get("statement") == statement]
            found.append({
                "id": move.id, "kind": move.kind, "status": move.status, "to": version_key(self.model, move.version),
                "from": version_key(self.model, move.previous_version) if move.previous_version else None,
                "direction": "to this version" if move.version == self.number else "away from this version",
                "actor": move.actor, "automated": move.actor.startswith("system:"), "reason": reason,
                "started_at": move.started_at, "finished_at": move.finished_at,
                "artifact_sha256": move.artifact_sha256, "approval_statement": move.approval_digest,
                "statement_digest": statement, "entries": [self.cite(e) for e in signed + entries]})
        return found

    def _move_entries(self, move: Deployment) -> list[LedgerEntry]:
        return [e for e in self._version_entries(version_key(self.model, move.version))
                if _family(e.action) in MOVES and (e.payload or {}).get("deployment_id") == move.id]

    def _version_entries(self, version: str) -> list[LedgerEntry]:
        """Entries naming `version` (this one, or another a move went to), read once per version."""
        if version == self.version:
            return self.own
        if version not in self.others:
            self.others[version] = [e for e in self.services.ledger.entries(model=self.model, version=version,
                                                                            checked=False)
                                    if e.seq <= self.size]
        return self.others[version]

    def _champion_periods(self) -> list[tuple[str, str | None]]:
        """When this version was the governed champion: from each completed move to it until the next one."""
        done = sorted((m for m in self.moves if m.status == "completed"), key=lambda m: m.finished_at)
        return [(m.finished_at, done[i + 1].finished_at if i + 1 < len(done) else None)
                for i, m in enumerate(done) if m.version == self.number]

    def _kill_switch(self) -> dict:
        periods = self._champion_periods()
        events = [e for e in self._model_entries("kill_switch.on", "kill_switch.off")
                  if any(start <= e.ts and (end is None or e.ts < end) for start, end in periods)]
        return {"champion_periods": [{"from": start, "to": end} for start, end in periods],
                "events": [{"state": e.action.split(".")[1], "by": e.actor, "at": e.ts,
                            "reason": (e.payload or {}).get("reason"), "entry": self.cite(e)} for e in events]}

    def _monitoring(self) -> list[dict]:
        return [{"action": e.action, "by": e.actor, "at": e.ts, "digests": e.digests, "facts": e.payload,
                 "entry": self.cite(e)} for e in self.own if _family(e.action) in MONITORING_FAMILIES]

    def _refusals(self) -> list[dict]:
        return [{"action": e.action, "by": e.actor, "at": e.ts,
                 "reason": (e.payload or {}).get("reason") or (e.payload or {}).get("reasons"),
                 "entry": self.cite(e)} for e in self.own if e.action.endswith(".refused")]

    def _summary(self, document: dict) -> dict:
        approvals = [a for a in document["approvals"] if a["decision"] == "granted"]
        relied = [a for a in approvals if a["relied_on_by_deployments"]]
        approval = (relied or approvals or [None])[-1]
        training, pack, data = document["training"] or {}, document["evidence_pack"] or {}, document["data"] or {}
        return {"status": self._status(document), "data_md5": data.get("dvc_md5") or training.get("data_md5"),
                "data_source": data.get("source"), "mlflow_run_id": training.get("mlflow_run_id"),
                "code_version": training.get("code_version"), "artifact_sha256": training.get("artifact_sha256"),
                "policy_digest": (document["gate"] or {}).get("policy_digest"),
                "evidence_pack_digest": pack.get("digest"),
                "approver": approval and approval["approver"], "approver_roles": approval and approval["roles"],
                "approved_at": approval and approval["signed_at"],
                "approval_statement": approval and approval["statement_digest"]}

    def _status(self, document: dict) -> str:
        done = sorted((m for m in self.moves if m.status == "completed"), key=lambda m: m.finished_at)
        if any(m.version == self.number for m in done):
            last = done[-1]
            if last.version == self.number:
                return "champion"
            return f"not the champion: {version_key(self.model, last.version)} is ({last.kind} at {last.finished_at})"
        if any(a["decision"] == "granted" for a in document["approvals"]):
            return "approved, not deployed"
        if document["evidence_pack"]:
            return "pending approval"
        gate = document["gate"]
        if gate:
            return {True: "gate passed", False: "gate denied"}.get(gate["allowed"], "gate decided (payload expired)")
        return "registered"
