"""A story's identity across feeds (DESIGN §6): its canonical link, else its title's fingerprint.

Kept apart from `parse` because the store recomputes keys in a migration, and the store must
not import a stage.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from w3lib.url import canonicalize_url

__all__ = ["canonical_url", "story_key", "title_fingerprint"]

_TRACKING = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_ga|ocid|at_\w+)$"
)
_FINGERPRINT_JUNK = re.compile(r"[\W_]+")


def _kept(parameter: str) -> bool:
    return not _TRACKING.match(unquote_plus(parameter.partition("=")[0]))


def canonical_url(url: str) -> str:
    """A link as a story identity, however the publisher wrote it.

    w3lib percent-encodes the path and query the one way (UTF-8, upper-case escapes, nothing
    escaped that need not be), sorts the query, lower-cases the host and drops the fragment.
    On top: `http` is `https`, no `www.`, no default port, no trailing slash, no tracking
    parameters (`utm_*`, `fbclid`, `gclid`, ...).

    Raises:
        ValueError: not a link that can be read (a port out of range, a broken IPv6 host).
    """
    parts = urlsplit(canonicalize_url(url.strip(), keep_fragments=False))
    scheme = parts.scheme.lower()
    if scheme == "http":
        scheme = "https"
    host = (parts.hostname or "").lower().removeprefix("www.")
    if parts.port and parts.port not in (80, 443):
        host = f"{host}:{parts.port}"
    path = parts.path.rstrip("/") or "/"
    # The query as w3lib wrote it (sorted, escaped), less the tracking parameters.
    query = "&".join(p for p in parts.query.split("&") if p and _kept(p))
    return urlunsplit((scheme, host, path, query, ""))


def title_fingerprint(title: str) -> str:
    folded = _FINGERPRINT_JUNK.sub(" ", title.casefold()).strip()
    return hashlib.sha256(folded.encode()).hexdigest()[:24]


def story_key(url: str | None, title: str) -> str:
    """`url:` and the canonical link; `title:` and a fingerprint when there is no usable link."""
    if url:
        try:
            if urlsplit(url.strip()).scheme in ("http", "https"):
                return "url:" + canonical_url(url)
        except ValueError:
            pass  # a link that cannot be read identifies nothing: the title does
    return "title:" + title_fingerprint(title)
