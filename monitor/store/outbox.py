"""The deliveries outbox: what is due, sent, retried or dead (DESIGN §7)."""

from __future__ import annotations

from monitor.store.base import StoreBase

__all__ = ["OutboxQueries"]


class OutboxQueries(StoreBase):
    """Queries of this module; `Store` combines them."""
