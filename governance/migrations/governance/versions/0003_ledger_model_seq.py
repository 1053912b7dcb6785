"""An index on the ledger's (model, seq): a model's latest events and the console's pages of a model's entries
(newest first) read an index range instead of sorting every entry of the model.

Revision ID: g0003
"""

from alembic import op

revision = "g0003"
down_revision = "g0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_ledger_entries_model_seq", "ledger_entries", ["model", "seq"])
