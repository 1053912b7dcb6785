"""Baseline: the decision log as it was before migrations.

A log those versions created is kept and gains the nullable columns added to it over time (they were
added by the log itself when it opened, so an old log may lack them); its rows stay as they are.

Revision ID: d0001
"""

import sqlalchemy as sa
from alembic import op

revision = "d0001"
down_revision = None
branch_labels = None
depends_on = None

# Columns added after the first release of the decision log, all nullable.
_LATER_COLUMNS: list[sa.Column] = [sa.Column("reasons_withheld", sa.Integer), sa.Column("safe_state_reason", sa.Text)]


def upgrade() -> None:
    bind = op.get_bind()
    if not sa.inspect(bind).has_table("decisions"):
        op.create_table(
            "decisions",
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("decision_id", sa.String(40), nullable=False, unique=True),
            sa.Column("ts", sa.String(40), nullable=False),
            sa.Column("model", sa.String(100), nullable=False),
            sa.Column("version", sa.Integer),
            sa.Column("input_digest", sa.String(64), nullable=False),
            sa.Column("features", sa.Text),
            sa.Column("protected", sa.Text),
            sa.Column("score", sa.Float),
            sa.Column("outcome", sa.String(20), nullable=False),
            sa.Column("reasons", sa.Text, nullable=False),
            sa.Column("reasons_withheld", sa.Integer),
            sa.Column("kill_switch", sa.Boolean, nullable=False),
            sa.Column("safe_state_reason", sa.Text),
            sa.Column("label", sa.Integer),
            sa.Column("labelled_at", sa.String(40)),
        )
        op.create_index("ix_decisions_model_seq", "decisions", ["model", "seq"])
        return
    present = {column["name"] for column in sa.inspect(bind).get_columns("decisions")}
    for column in _LATER_COLUMNS:
        if column.name not in present:
            op.add_column("decisions", column)
