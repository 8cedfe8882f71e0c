"""Secrets are never shown: one rule set for every message, log field, column and endpoint.

Two rules, applied at the edges (config errors, the dispatcher's `last_error` and logs,
`test-sink`, /healthz and the status line):

- a sink URL shown anywhere keeps its scheme and host only: `https://hooks.slack.com/…`
  (`shown_url`); a webhook URL's path and query are its password;
- text that may carry a secret (an error body a service echoes back, an exception message) has
  every configured secret value replaced by `[redacted]`, and whatever looks like a secret by
  its shape too: Telegram bot tokens, `whsec_…`, Slack `xox?-…` tokens, Slack and Discord
  webhook paths, Matrix and ntfy access tokens, bearer tokens, credentials in URLs and
  secret-named query parameters (`Redactor`).

Pure text, imported by config, deliver, ops and cli alike; it imports nothing of the package.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Protocol
from urllib.parse import quote, unquote, urlsplit

__all__ = ["REDACTED", "Redactor", "SinkSecrets", "redact", "secret_values", "shown_url"]

REDACTED = "[redacted]"

_MIN_SECRET = 6
"""Shorter values are not searched for: replacing `/` or `ok` everywhere would hide the error
itself, and a secret that short protects nothing anyway."""
_MIN_SEGMENT = 8
_WORD = re.compile(r"[a-z]+(?:[-_][a-z]+)*")
"""A plain lowercase path segment (`services`, `incoming-webhook`): a name, not a secret."""
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]*[A-Za-z0-9]"
    r"|localhost|\[[0-9A-Fa-f:.]+\]"
)
_PORT = re.compile(r":\d{1,5}")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Telegram bot tokens, inside a Bot API path or on their own.
    (re.compile(r"\bbot\d{3,}:[A-Za-z0-9_-]+"), "bot" + REDACTED),
    (re.compile(r"\b\d{6,}:[A-Za-z0-9_-]{30,}"), REDACTED),
    # Standard Webhooks secrets.
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), REDACTED),
    # Slack tokens and incoming-webhook paths; Discord webhook paths.
    (re.compile(r"\bxox[abposre]-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"\bxapp-[A-Za-z0-9-]+"), REDACTED),
    (re.compile(r"/services/T[A-Za-z0-9_]*/B[A-Za-z0-9_]*/[A-Za-z0-9_]+"), "/services/" + REDACTED),
    (re.compile(r"/api/webhooks/\d+/[A-Za-z0-9_.-]+"), "/api/webhooks/" + REDACTED),
    # Matrix and ntfy access tokens, and any bearer token.
    (re.compile(r"\bsy[td]_[A-Za-z0-9_]+"), REDACTED),
    (re.compile(r"\btk_[A-Za-z0-9]{20,}"), REDACTED),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + REDACTED),
    # Credentials in a URL, and query parameters named for a secret (Teams' `sig=`).
    (re.compile(r"(://)[^/\s@?#]+@"), r"\1" + REDACTED + "@"),
    (
        re.compile(
            r"(?i)([?&](?:sig|signature|token|access_token|secret|key|api_key|apikey|code|"
            r"password|auth)=)[^&\s#'\"]+"
        ),
        r"\1" + REDACTED,
    ),
)


def shown_url(url: str | None) -> str:
    """A URL as it may be shown anywhere: scheme and host, the rest `…`.

    `https://hooks.slack.com/services/T0/B0/XYZ` → `https://hooks.slack.com/…`. What follows
    the scheme is kept only if it reads as a host name (user names, passwords and Apprise
    URLs whose "host" is a token are cut): `tgram://123:abc/chat` → `tgram://…`.
    """
    if not url:
        return "…"
    text = url.strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        return "…"
    rest = text[scheme.end() :]
    authority = re.split(r"[/?#\\]", rest, maxsplit=1)[0]
    host = authority
    port = ""
    if (found := _PORT.search(authority)) and found.end() == len(authority):
        host, port = authority[: found.start()], found.group()
    if "@" in authority or not _HOST.fullmatch(host):
        return f"{scheme.group(1)}://…"
    shown = f"{scheme.group(1)}://{host}{port}"
    return shown if rest == authority else shown + "/…"


class SinkSecrets(Protocol):
    """The parts of a sink's settings that are secrets (`monitor.config.SinkConfig`)."""

    @property
    def url(self) -> str | None: ...

    @property
    def token(self) -> str | None: ...

    @property
    def secret(self) -> tuple[str, ...]: ...

    @property
    def headers(self) -> Mapping[str, str]: ...


def _url_secrets(url: str) -> set[str]:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return {url}
    values = {parts.path, parts.query, parts.fragment}
    if parts.scheme not in ("http", "https") or "@" in parts.netloc:
        # Apprise URLs carry tokens where a host would be; URLs may carry credentials.
        values.add(url.strip().split("://", 1)[-1])
        values.add(parts.netloc)
    values.update(parts.netloc.rpartition("@")[0].split(":"))
    if parts.path and parts.query:
        values.add(f"{parts.path}?{parts.query}")
    for segment in parts.path.split("/"):
        if len(segment) >= _MIN_SEGMENT and not _WORD.fullmatch(segment):
            values.add(segment)
    return values


def secret_values(sinks: Iterable[SinkSecrets]) -> set[str]:
    """Every configured secret: sink URL paths and queries, tokens, secrets, header values."""
    values: set[str] = set()
    for sink in sinks:
        if sink.url:
            values |= _url_secrets(sink.url)
        if sink.token:
            values.add(sink.token)
        values.update(sink.secret)
        values.update(sink.headers.values())
    found: set[str] = set()
    for value in values:
        value = value.strip()
        if len(value) < _MIN_SECRET:
            continue
        # As sent, as a service may echo it back percent-encoded, and decoded.
        found |= {value, quote(value, safe=""), quote(value, safe="/:"), unquote(value)}
    return {value for value in found if len(value) >= _MIN_SECRET}


class Redactor:
    """`redactor(text)`: `text` with configured secrets and secret-shaped text redacted."""

    __slots__ = ("_known",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        values = sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True)
        # Longest first, so a secret that contains another is replaced whole.
        self._known = re.compile("|".join(map(re.escape, values))) if values else None

    @classmethod
    def for_sinks(cls, sinks: Iterable[SinkSecrets]) -> Redactor:
        return cls(secret_values(sinks))

    def __call__(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(REDACTED, text)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def redact(text: str) -> str:
    """The shape rules alone, for text from where no configuration is at hand."""
    return _BY_SHAPE(text)


_BY_SHAPE = Redactor()
