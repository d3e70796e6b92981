"""Baseline: the tables of the first release.

Until the first release is tagged the baseline follows hub.store.tables; from then on it is
frozen and every schema change is a migration of its own. While it follows the tables, a new
database it creates already has every later revision's schema: those revisions must change
nothing on it (0002 checks the column before altering it; tests/test_migrations.py).
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
