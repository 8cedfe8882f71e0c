"""Translations: the cache and the English text stored on items."""

from __future__ import annotations

from monitor.store.base import StoreBase

__all__ = ["TranslationQueries"]


class TranslationQueries(StoreBase):
    """Queries of this module; `Store` combines them."""
