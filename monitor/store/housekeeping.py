"""Housekeeping: retention, checkpoints and the summary behind status and metrics."""

from __future__ import annotations

from monitor.store.base import StoreBase

__all__ = ["HousekeepingQueries"]


class HousekeepingQueries(StoreBase):
    """Queries of this module; `Store` combines them."""
