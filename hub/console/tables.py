"""The console's own tables: users, API tokens, the audit trail and pull-feed cursors."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, Index, String, Table, Text

from hub.store.tables import Id, When, _id, metadata

users = Table(
    "users",
    metadata,
    _id(),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # auth.UserRole
    Column("codes", JSON, nullable=False),  # enterprise codes an operator acts for
    Column("password_hash", String(255), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", When, nullable=False),
)

tokens = Table(
    "tokens",
    metadata,
    _id(),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("prefix", String(12), nullable=False),  # shown in listings, never the whole token
    Column("created_at", When, nullable=False),
    Column("last_used_at", When),
    Column("revoked", Boolean, nullable=False, default=False),
)

audit = Table(
    "audit",
    metadata,
    _id(),
    Column("at", When, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("target", String(128)),
    Column("detail", Text),
    Index("ix_audit_at", "at"),
)

feed_cursors = Table(
    "feed_cursors",
    metadata,
    Column("partner_id", String(64), primary_key=True),
    Column("acked_through", Id, nullable=False),  # every delivery id up to this is acknowledged
    Column("acked_at", When, nullable=False),
)
