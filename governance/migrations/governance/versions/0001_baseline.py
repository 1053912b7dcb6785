"""Baseline: the ledger, signed statements, control state and monitoring leases as they were before migrations.

A database those versions created already has the tables: they are kept as they are (only the missing
ones are created), so upgrading an existing state loses nothing.

Revision ID: g0001
"""

import sqlalchemy as sa
from alembic import op

revision = "g0001"
down_revision = None
branch_labels = None
depends_on = None

_DERIVED = {"model": "subject.model", "version": "subject.version", "action": "action", "ts": "ts"}


def _derived(dialect: str, name: str) -> sa.Column:
    path = _DERIVED[name]
    if dialect == "sqlite":
        return sa.Column(name, sa.Text, sa.Computed(f"json_extract(content, '$.{path}')", persisted=False))
    return sa.Column(name, sa.Text, sa.Computed(f"(content::jsonb #>> '{{{path.replace('.', ',')}}}')", persisted=True))


def _ledger(dialect: str) -> None:
    sequence = sa.BigInteger().with_variant(sa.Integer, "sqlite")
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sequence, primary_key=True, autoincrement=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("payload", sa.Text),
        sa.Column("payload_digest", sa.Text, nullable=False),
        sa.Column("entry_hash", sa.Text, nullable=False),
        *(_derived(dialect, name) for name in _DERIVED),
        sa.CheckConstraint("seq >= 1", name="ledger_entries_seq_positive"),
    )
    op.create_index("ix_ledger_entries_model", "ledger_entries", ["model", "version", "seq"])
    op.create_index("ix_ledger_entries_action", "ledger_entries", ["action", "seq"])
    op.create_index(
        "ix_ledger_entries_expired",
        "ledger_entries",
        ["seq"],
        sqlite_where=sa.text("payload IS NULL"),
        postgresql_where=sa.text("payload IS NULL"),
    )
    op.create_table(
        "ledger_nodes",
        sa.Column("level", sa.Integer, primary_key=True),
        sa.Column("idx", sequence, primary_key=True),
        sa.Column("hash", sa.Text, nullable=False),
    )


def _statements() -> None:
    op.create_table(
        "signed_statements",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("nonce", sa.String(64), nullable=False, unique=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("principal", sa.String(32), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.String(128)),
        sa.Column("issued_at", sa.String(27), nullable=False),
        sa.Column("expires_at", sa.String(27), nullable=False),
        sa.Column("recorded_at", sa.String(27), nullable=False),
        sa.Column("roster_version", sa.Integer, nullable=False),
        sa.Column("roster_digest", sa.String(64), nullable=False),
        sa.Column("ledger_entry_hash", sa.String(64)),
        sa.Column("document", sa.Text, nullable=False),
    )
    op.create_index("ix_signed_statements_subject", "signed_statements", ["model", "version", "action"])


def _control() -> None:
    op.create_table(
        "kill_switches",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("changed_by", sa.String(100), nullable=False),
        sa.Column("changed_at", sa.String(40), nullable=False),
        sa.Column("statement_digest", sa.String(64), nullable=False),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("evidence_digest", sa.String(64), nullable=False),
        sa.Column("approval_digest", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.Integer),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40)),
    )
    op.create_index("ix_deployments_model", "deployments", ["model"])


def _leases() -> None:
    op.create_table(
        "monitoring_leases",
        sa.Column("model", sa.String(100), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
    )


def upgrade() -> None:
    bind = op.get_bind()
    present = set(sa.inspect(bind).get_table_names())
    dialect = bind.dialect.name
    if "ledger_entries" not in present:
        _ledger(dialect)
    if "signed_statements" not in present:
        _statements()
    if "kill_switches" not in present:
        _control()
    if "monitoring_leases" not in present:
        _leases()
