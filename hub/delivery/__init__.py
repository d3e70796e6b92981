"""Outbound delivery: the transactional outbox, the worker that drains it, and its retry policy."""
