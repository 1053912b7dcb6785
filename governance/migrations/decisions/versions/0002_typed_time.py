"""The decision log ages well: a 64-bit sequence, typed timestamps and an index retention deletes by.

PostgreSQL: `seq` and its sequence become bigint (a serial's sequence is 32-bit and would stop the log
after 2,147,483,647 decisions), `ts` and `labelled_at` become timestamptz. SQLite already has 64-bit
rowids and keeps ISO-8601 UTC text, which sorts as time. Both get an index on (model, ts), so that
retention deletes a model's old decisions through it instead of scanning the log.

Revision ID: d0002
"""

from alembic import op

revision = "d0002"
down_revision = "d0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE decisions ALTER COLUMN seq TYPE bigint")
        op.execute("ALTER SEQUENCE IF EXISTS decisions_seq_seq AS bigint")
        op.execute(
            "ALTER TABLE decisions ALTER COLUMN ts TYPE timestamptz USING ts::timestamptz, "
            "ALTER COLUMN labelled_at TYPE timestamptz USING labelled_at::timestamptz"
        )
    op.create_index("ix_decisions_model_ts", "decisions", ["model", "ts"])
