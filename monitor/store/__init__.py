"""The store (DESIGN §6): schema, migrations, and every query the service runs.

One SQLite file (the embedded default) or a PostgreSQL database (`database: postgresql://…`,
issue 13): the same tables and the same queries, written once (`dialect` holds the few
spellings that differ, `_postgres` the PostgreSQL connection and its baseline schema).

Nothing outside this package touches SQL. One `Store` belongs to one thread (the service runs
it on a `StoreThread`). Each module holds the queries of one concern; importing them here, in
this order, registers their migrations in the order they apply.
"""

from __future__ import annotations

# First, so that sqlite-utils loads without numpy.
from monitor.store import _sqlite  # noqa: F401
from monitor.store.base import StoreBase
from monitor.store.schema import iso, shown, utcnow

# These imports register their migrations in the order written, which is the order they apply
# in: keep new query modules last.
# isort: off
from monitor.store.feeds import AlertPlan, FeedQueries, FeedState, NewItem, PollWrite, WriteResult
from monitor.store.outbox import OutboxQueries
from monitor.store.translations import TranslationQueries
from monitor.store.housekeeping import HousekeepingQueries
from monitor.store.views import VIEWS
from monitor.store import story_keys as _story_keys  # noqa: F401  (migration 0006 only)
from monitor.store.articles import ArticleQueries
from monitor.store.rescan import RescanQueries
from monitor.store.incidents import migrate as _migrate_incidents
from monitor.store.cluster import ClusterQueries, Leased, NodeRow
from monitor.store.cluster import migrate as _migrate_cluster
from monitor.store.schema import migrations as _migrations
from monitor.store.translations import migrate_claims as _migrate_translation_claims

_migrations(name="0009_incidents")(_migrate_incidents)
_migrations(name="0010_cluster")(_migrate_cluster)
_migrations(name="0011_translation_claims")(_migrate_translation_claims)
# isort: on

__all__ = [
    "VIEWS",
    "AlertPlan",
    "FeedState",
    "Leased",
    "NewItem",
    "NodeRow",
    "PollWrite",
    "Store",
    "StoreBase",
    "WriteResult",
    "iso",
    "shown",
    "utcnow",
]


class Store(
    ClusterQueries,
    ArticleQueries,
    RescanQueries,
    TranslationQueries,
    FeedQueries,
    OutboxQueries,
    HousekeepingQueries,
):
    """The whole store: open with `Store.open(path)`."""
