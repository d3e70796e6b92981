"""deliveries.body nullable: a routed copy without an envelope refers to its message's body.

Such a copy is byte for byte the stored `messages.body`; keeping it again per route target
stored every declaration three times. The row now keeps body NULL and readers take
COALESCE(deliveries.body, messages.body) (hub.delivery.outbox.BODY).

0001 creates the tables from today's hub.store.tables, so on a database it has just created
the column is nullable already and this revision changes nothing: it alters only a database
created before (body NOT NULL). SQLite cannot alter a column in place: batch mode rebuilds
the table, rows, indexes and constraints included.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _body_nullable() -> bool:
    columns = sa.inspect(op.get_bind()).get_columns("deliveries")
    return next(c for c in columns if c["name"] == "body")["nullable"]


def upgrade() -> None:
    if _body_nullable():
        return  # created by 0001 from the current tables: nothing to change
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    # Every row gets its bytes back before the column may be NOT NULL again.
    op.execute(
        "UPDATE deliveries SET body = "
        "(SELECT messages.body FROM messages WHERE messages.id = deliveries.message_id) "
        "WHERE body IS NULL"
    )
    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
