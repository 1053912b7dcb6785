"""Production control state: what is deployed, and whether a model's kill switch is on.

The MLflow `champion` alias says which version serving loads; this store says
which versions were deployed through governance, with the artifact digest that
was approved, so serving can refuse an alias someone moved by hand and a
rollback knows its targets. The kill switch is a row per model that serving
polls; flipping it is one committed write.

Writers are governance commands and assets that have already verified a signed
statement and asked Cedar; this store only records. Same database as the
ledger (`Settings.ledger_url`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, String, Table, Text, insert, select, update

from governance.db import engine_for, inserted_id, write_transaction
from governance.migrations import require_current
from governance.timestamps import utc_timestamp

metadata = MetaData()
kill_switches = Table(
    "kill_switches",
    metadata,
    Column("model", String(100), primary_key=True),
    Column("disabled", Boolean, nullable=False),
    Column("reason", Text, nullable=False),
    Column("changed_by", String(100), nullable=False),
    Column("changed_at", String(40), nullable=False),
    Column("statement_digest", String(64), nullable=False),
)
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(100), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("kind", String(20), nullable=False),  # deploy | rollback
    Column("status", String(20), nullable=False),  # started | completed | aborted
    Column("artifact_sha256", String(64), nullable=False),
    Column("evidence_digest", String(64), nullable=False),
    Column("approval_digest", String(64), nullable=False),
    Column("previous_version", Integer),
    Column("actor", String(100), nullable=False),
    Column("started_at", String(40), nullable=False),
    Column("finished_at", String(40)),
)


@dataclass(frozen=True)
class KillSwitch:
    model: str
    disabled: bool
    reason: str = ""
    changed_by: str = ""
    changed_at: str = ""
    statement_digest: str = ""


@dataclass(frozen=True)
class Deployment:
    id: int
    model: str
    version: int
    kind: str
    status: str
    artifact_sha256: str
    evidence_digest: str
    approval_digest: str
    previous_version: int | None
    actor: str
    started_at: str
    finished_at: str | None


class ControlStore:
    def __init__(self, url: str) -> None:
        self.engine = engine_for(url)
        require_current(self.engine, "governance")

    @classmethod
    def for_settings(cls, settings) -> ControlStore:
        return cls(settings.ledger_url)

    # --- kill switch ---------------------------------------------------------------
    def kill_switch(self, model: str) -> KillSwitch:
        with self.engine.connect() as conn:
            row = conn.execute(select(kill_switches).where(kill_switches.c.model == model)).mappings().first()
        return KillSwitch(**row) if row else KillSwitch(model=model, disabled=False)

    def set_kill_switch(
        self, model: str, disabled: bool, reason: str, changed_by: str, statement_digest: str
    ) -> KillSwitch:
        values: dict[str, Any] = {
            "disabled": disabled,
            "reason": reason,
            "changed_by": changed_by,
            "changed_at": utc_timestamp(),
            "statement_digest": statement_digest,
        }
        with write_transaction(self.engine, "kill_switches") as conn:
            exists = conn.execute(select(kill_switches.c.model).where(kill_switches.c.model == model)).first()
            if exists:
                conn.execute(update(kill_switches).where(kill_switches.c.model == model).values(**values))
            else:
                conn.execute(insert(kill_switches).values(model=model, **values))
        return KillSwitch(model=model, **values)

    # --- deployments ---------------------------------------------------------------
    def start_deployment(
        self,
        *,
        model: str,
        version: int,
        kind: str,
        artifact_sha256: str,
        evidence_digest: str,
        approval_digest: str,
        previous_version: int | None,
        actor: str,
    ) -> Deployment:
        with write_transaction(self.engine, "deployments") as conn:
            new_id = inserted_id(
                conn.execute(
                    insert(deployments).values(
                        model=model,
                        version=version,
                        kind=kind,
                        status="started",
                        artifact_sha256=artifact_sha256,
                        evidence_digest=evidence_digest,
                        approval_digest=approval_digest,
                        previous_version=previous_version,
                        actor=actor,
                        started_at=utc_timestamp(),
                    )
                )
            )
        return self.deployment(new_id)

    def finish_deployment(self, deployment_id: int, status: str) -> Deployment:
        with write_transaction(self.engine, "deployments") as conn:
            conn.execute(
                update(deployments)
                .where(deployments.c.id == deployment_id)
                .values(status=status, finished_at=utc_timestamp())
            )
        return self.deployment(deployment_id)

    def deployment(self, deployment_id: int) -> Deployment:
        with self.engine.connect() as conn:
            row = conn.execute(select(deployments).where(deployments.c.id == deployment_id)).mappings().one()
        return Deployment(**row)

    def deployments(self, model: str, status: str | None = None) -> list[Deployment]:
        """Oldest first."""
        query = select(deployments).where(deployments.c.model == model).order_by(deployments.c.id)
        if status:
            query = query.where(deployments.c.status == status)
        with self.engine.connect() as conn:
            return [Deployment(**row) for row in conn.execute(query).mappings()]

    def deployed_artifact(self, model: str, version: int) -> str | None:
        """The approved artifact digest of a version that completed a deployment or rollback, else None."""
        done = [d for d in self.deployments(model, "completed") if d.version == version]
        return done[-1].artifact_sha256 if done else None
