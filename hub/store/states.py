"""Lifecycle states of stored messages, records and deliveries."""

from enum import StrEnum


class MessageState(StrEnum):
    """What became of an inbound message."""

    ACCEPTED = "accepted"  # readable, verified and valid; its records were applied
    REJECTED = "rejected"  # format, schema or signature failure; original quarantined
    DUPLICATE = "duplicate"  # the same message again; answered, no effect
    REDELIVERED = "redelivered"  # the same file fetched again by a transport; no effect


class RecordState(StrEnum):
    """A business record's life in the store."""

    ACTIVE = "active"  # the current version of the record
    DELETED = "deleted"  # deleted by appType 3; its key may be declared anew


class DeliveryState(StrEnum):
    """An outbound file's delivery."""

    PENDING = "pending"  # waiting for its first or next attempt
    DELIVERED = "delivered"  # written to its destination
    DEAD = "dead"  # gave up after the attempt limit; re-send by hand
