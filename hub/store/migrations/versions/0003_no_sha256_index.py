"""messages.sha256 without an index: duplicates are found by partner, type and guid.

The index served one look-up, the accepted messages with the same bytes, which the look-up by
guid (ux_messages_accepted_guid) already answers: an accepted message passed the XSD, which
requires its root's guid, so the same bytes carry the same type and guid. Its keys are
random, so each message's insert wrote a page of its own at scale: ~1 of the ~7 pages a
message adds to the write-ahead log. The column stays.

0001 creates the tables from today's hub.store.tables, without the index: on such a database
this revision changes nothing (IF EXISTS).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_messages_sha256")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_messages_sha256 ON messages (sha256)")
