"""Baseline: the tables of the first release.

Until the first release is tagged the baseline follows hub.store.tables; from then on it is
frozen and every schema change is a migration of its own.
"""

from alembic import op

from hub.store.tables import metadata

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
