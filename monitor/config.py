"""config.yaml: the schema (frozen pydantic models) and the loader.

`load_config(path)` returns an immutable `Config` or raises `ConfigError` whose problems each
read `file:line: key: what is wrong`. Reload builds a new `Config` and swaps it in.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from monitor._source import Path_, Source, display_name, environment, problem, read_opml, read_yaml
from monitor.errors import ConfigError
from monitor.redact import shown_url
from monitor.text.normalize import normalize_term

__all__ = [
    "Catalog",
    "ClusterConfig",
    "Config",
    "DatabaseURL",
    "DeliveryConfig",
    "FeedConfig",
    "HttpConfig",
    "IncidentsConfig",
    "PollingConfig",
    "RetentionConfig",
    "SinkConfig",
    "Term",
    "TranslationConfig",
    "WatchlistConfig",
    "format_duration",
    "load_config",
    "parse_duration",
    "read_catalog",
]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def parse_duration(value: object) -> timedelta:
    """`90s`, `10m`, `2h`, `1d`, `1h30m` as a timedelta; a number without a unit is refused."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError("must be a duration such as 90s, 10m, 2h or 1d")
    text = str(value).strip().replace(" ", "")
    if _NUMBER.match(text):
        # Seconds or minutes? A bare number is a guess either way, so say both.
        seconds = float(text)
        fix = f"{text}s"
        if seconds >= 60 and seconds == int(seconds):
            other = format_duration(timedelta(seconds=seconds))
            fix += f" or {other}" if other != fix else ""
        raise ValueError(f"{text} has no unit: write {fix}")
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration: write e.g. 90s, 10m, 2h or 1d")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def format_duration(value: timedelta) -> str:
    """The way a user writes a duration: `1d`, `90m`, `45s`."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _positive_duration(value: object) -> timedelta:
    duration = parse_duration(value)
    if duration <= timedelta(0):
        raise ValueError("must be longer than 0s")
    return duration


PositiveDuration = Annotated[timedelta, BeforeValidator(_positive_duration)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class PollingConfig(_Frozen):
    interval: PositiveDuration = timedelta(minutes=10)
    timeout: PositiveDuration = timedelta(seconds=20)
    concurrency: int = Field(16, ge=1, le=1024)
    per_host: int = Field(2, ge=1, le=64)
    backfill: Duration = timedelta(hours=24)
    max_backoff: PositiveDuration = timedelta(hours=6)
    max_bytes: int = Field(10_000_000, ge=1024)
    jitter: float = Field(0.1, ge=0, le=0.5)
    """Random spread of each poll, as a fraction of the feed's interval."""
    user_agent: str | None = None
    allow_private: bool = False
    """Let redirects (and article fetches) reach loopback, link-local and private addresses.
    A feed whose own URL is on such an address may always redirect within that kind."""


def _language(value: str | None) -> str | None:
    if value is not None and not _LANGUAGE_CODE.match(value):
        raise ValueError(f"{value!r} is not a language code such as ckb, kmr, ar or en")
    return value


class FeedConfig(_Frozen):
    name: str = Field(min_length=1)
    url: str
    language: Annotated[str | None, BeforeValidator(_language)] = None
    interval: PositiveDuration | None = None
    verified: bool = True
    """False for a catalog URL nobody could confirm yet; it is polled all the same."""
    full_text: bool = False
    """Fetch each new item's article page and match its text too (headline-only feeds)."""
    group: str | None = None
    """A folder name, kept from an imported OPML outline; for people, not for polling."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


TranslationEngine = Literal["argos", "nllb", "madlad"]


class TranslationConfig(_Frozen):
    target: str = "en"
    mode: Literal["all", "matched", "off"] = "all"
    engines: tuple[TranslationEngine, ...] = ("argos", "nllb", "madlad")
    """Tried in order for each source language; the first with an installed model serves it."""
    max_chars: int = Field(2000, ge=1)
    """Title and summary are each cut to this many characters before translation."""
    threads: int = Field(2, ge=1, le=64)
    """CPU threads one translation may use."""
    batch_size: int = Field(32, ge=1, le=1024)
    """Sentences per `translate_batch` call."""
    queue: int = Field(1000, ge=1)
    """Items waiting for translation; beyond this, polls do not wait: items skip translation."""
    compute_type: Literal["int8", "int8_float32", "float32", "auto"] = "int8"


def _term_entry(value: object) -> object:
    return {"term": value} if isinstance(value, str) else value


def _matchable(value: str) -> str:
    """A term, alias or `none` word that normalizes to nothing could never match: refuse it."""
    if not value:
        raise ValueError("is empty: remove it")
    if not normalize_term(value):
        shown = value.encode("unicode_escape").decode("ascii")
        codes = " ".join(f"U+{ord(c):04X}" for c in value)
        raise ValueError(
            f"'{shown}' ({codes}) is only invisible characters or marks: it can never match"
        )
    return value


MatchText = Annotated[str, AfterValidator(_matchable)]


class Term(_Frozen):
    term: MatchText = Field(min_length=1)
    aliases: tuple[MatchText, ...] = ()
    expand: bool = True
    """Whether a term naming a gazetteer entry also matches the entry's other spellings."""


class WatchlistConfig(_Frozen):
    name: str = Field(min_length=1)
    severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    terms: tuple[Annotated[Term, BeforeValidator(_term_entry)], ...] = Field(min_length=1)
    none: tuple[MatchText, ...] = ()
    notify: tuple[str, ...] | None = None
    """Sink names; None means every sink."""


SinkType = Literal[
    "slack", "discord", "teams", "mattermost", "telegram", "matrix", "ntfy", "apprise", "webhook"
]


def _string_list(value: object) -> object:
    return (value,) if isinstance(value, str) else value


def _needs(sink_type: str, token: bool = False) -> tuple[str, ...]:
    if sink_type == "slack" and token:
        return ("channel",)  # the Web API (chat.postMessage): url, if given, is its base
    return {"telegram": ("token", "chat_id"), "matrix": ("url", "room", "token")}.get(
        sink_type, ("url",)
    )


def _secret(value: str) -> str:
    if not value:
        raise ValueError("is empty: give the whsec_… secret, or remove the key to send unsigned")
    return value


_SENDING_KEYS = frozenset({"url", "secret", "headers", "token", "room", "chat_id", "channel"})
"""What a sink sends with: resolved from ${NAME} only by the commands that send."""
_UNRESOLVED = "https://unresolved.invalid/"
"""Stands in for an unset ${NAME} while the rest of its sink is checked; never kept."""


class SinkConfig(_Frozen):
    name: str = Field(min_length=1)
    type: SinkType
    url: str | None = None
    """The webhook / Apprise URL; for matrix the homeserver; for telegram the Bot API base."""
    secret: Annotated[
        tuple[Annotated[str, AfterValidator(_secret)], ...], BeforeValidator(_string_list)
    ] = ()
    """webhook: Standard Webhooks secrets (`whsec_…`); several while rotating."""
    headers: dict[str, str] = Field(default_factory=dict)
    """webhook: extra HTTP headers."""
    token: str | None = None
    """telegram: the bot token; matrix: the access token; ntfy: an access token; slack: a bot
    token (`xoxb-…`), to post with the Web API into `channel` and thread updates."""
    room: str | None = None
    """matrix: the room id (`!abc:example.org`)."""
    chat_id: str | None = None
    """telegram: the chat to post in."""
    channel: str | None = None
    """slack with a token: the channel id to post in (`C0123…`)."""
    rate: float | None = Field(None, gt=0)
    """Messages per second at most; default: the service's documented limit."""
    timeout: PositiveDuration = timedelta(seconds=10)
    _unresolved: tuple[str, ...] = PrivateAttr(default=())

    @property
    def unresolved(self) -> tuple[str, ...]:
        """A problem for each unset ${NAME} this sink sends with; such a sink has nothing to
        send with (no url, secret, headers, token, room or chat id) until it is resolved."""
        return self._unresolved

    @field_validator("url", "token", "room", "chat_id", "channel")
    @classmethod
    def _not_empty(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value == "":
            sink_type = info.data.get("type")
            if sink_type is not None and info.field_name in _needs(sink_type):
                raise ValueError(f"is empty: a {sink_type} sink needs {info.field_name}")
            raise ValueError("is empty: give a value or remove the key")
        return value

    @model_validator(mode="after")
    def _required_by_type(self) -> SinkConfig:
        needs = _needs(self.type, self.token is not None)
        missing = [key for key in needs if not getattr(self, key)]
        if missing:
            raise ValueError(f"a {self.type} sink needs {' and '.join(missing)}")
        if self.secret and self.type != "webhook":
            raise ValueError("secret applies to webhook sinks only")
        if self.channel and (self.type != "slack" or not self.token):
            raise ValueError("channel applies to slack sinks with a token only")
        if self.type not in ("apprise",) and self.url and not re.match(r"^https?://", self.url):
            # Shown as scheme and host only: a webhook URL's path is its password.
            raise ValueError(f"url {shown_url(self.url)!r} is not an http(s) URL")
        return self


class DeliveryConfig(_Frozen):
    retry_for: PositiveDuration = timedelta(hours=24)
    """After this long a failing delivery is given up: `dead`, listed, retried by hand."""
    digest_after: int = Field(5, ge=1)
    """Flood control: more alerts than this from one watchlist to one sink within
    `digest_window` go out as one digest message instead."""
    digest_window: PositiveDuration = timedelta(minutes=10)


class BreakingConfig(_Frozen):
    outlets: int = Field(3, ge=1)
    """An incident reported by this many distinct outlets within `within` is breaking."""
    within: PositiveDuration = timedelta(minutes=60)


class IncidentsConfig(_Frozen):
    window: PositiveDuration = timedelta(hours=48)
    """An incident stays open this long after its last report."""
    breaking: BreakingConfig = BreakingConfig()
    update_every: PositiveDuration = timedelta(minutes=30)
    """Sinks that can neither thread nor edit get at most one update per incident this often."""


class HttpConfig(_Frozen):
    listen: str = "127.0.0.1:9464"
    """host:port of the /healthz and /metrics listener."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{value!r} is not host:port, e.g. 127.0.0.1:9464")
        return value


_DATABASE_SCHEMES = ("postgresql://", "postgres://")


class DatabaseURL:
    """A PostgreSQL database (`database: postgresql://user:pass@host:port/db`, issue 13).

    `url` is the libpq URI to connect with; `str()` and `repr()` leave the password out
    (`postgresql://user@host:port/db`), so a log line, an error or `status` never shows it.
    """

    __slots__ = ("shown", "url")

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError("is not a postgresql://USER:PASSWORD@HOST:PORT/DATABASE URL")
        try:
            port = parts.port
        except ValueError:
            raise ValueError("has a port that is not a number") from None
        user = f"{parts.username}@" if parts.username else ""
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        netloc = f"{user}{host}" + (f":{port}" if port else "")
        self.url = url
        self.shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))

    def __str__(self) -> str:
        return self.shown

    def __repr__(self) -> str:
        return f"DatabaseURL({self.shown!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DatabaseURL) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(cls)


def _database(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower().startswith(_DATABASE_SCHEMES):
        return DatabaseURL(value.strip())
    if value is not None and not isinstance(value, str | Path | DatabaseURL):
        # Checked here: the union would report each of its members' errors in pydantic's words.
        raise ValueError(f"must be a path or a postgresql:// URL, not {_shown(value)}")
    return value


class RetentionConfig(_Frozen):
    items: PositiveDuration = timedelta(days=90)
    """Items older than this are pruned; alerts and their deliveries are kept."""


def _lease(value: object) -> timedelta:
    duration = parse_duration(value)
    # Heartbeats and renewals come every lease/3: not more often than once a second.
    if duration < timedelta(seconds=3):
        raise ValueError("must be at least 3s")
    return duration


class ClusterConfig(_Frozen):
    """Several daemons on one database (README "Beyond one machine")."""

    node: str | None = Field(None, min_length=1, max_length=200)
    """This daemon's name among the nodes; default `<hostname>-<pid>`."""
    lease: Annotated[timedelta, BeforeValidator(_lease)] = timedelta(seconds=60)
    """How long a node holds a feed it polls (renewed while it polls): a dead node's feeds
    are polled again by another node at most this long after it died."""


class Config(_Frozen):
    source: Path = Path("config.yaml")
    """The file this was loaded from; relative paths below are resolved against it."""
    database: Annotated[Path | DatabaseURL, BeforeValidator(_database)] = Path("monitor.db")
    """A SQLite file, or a PostgreSQL database (`DatabaseURL`)."""
    state_dir: Path = Path()
    polling: PollingConfig = PollingConfig()
    feeds: tuple[FeedConfig, ...] = ()
    translation: TranslationConfig = TranslationConfig()
    watchlists: tuple[WatchlistConfig, ...] = ()
    sinks: tuple[SinkConfig, ...] = ()
    delivery: DeliveryConfig = DeliveryConfig()
    incidents: IncidentsConfig = IncidentsConfig()
    http: HttpConfig | None = None
    """The /healthz and /metrics listener; off unless configured."""
    retention: RetentionConfig = RetentionConfig()
    cluster: ClusterConfig = ClusterConfig()
    warnings: tuple[str, ...] = ()
    """What loading passed over without refusing it (`file:line: …`), for `check-config` and
    the daemon's log: an OPML outline with no feed in it, for one."""

    @model_validator(mode="after")
    def _resolve_paths(self) -> Config:
        base = self.source.parent
        for key in ("database", "state_dir"):
            value = getattr(self, key)
            if isinstance(value, Path) and not value.is_absolute():
                object.__setattr__(self, key, (base / value).resolve())
        return self

    def feed_interval(self, feed: FeedConfig) -> timedelta:
        return feed.interval or self.polling.interval

    def sinks_for(self, watchlist: WatchlistConfig) -> tuple[str, ...]:
        if watchlist.notify is None:
            return tuple(sink.name for sink in self.sinks)
        return watchlist.notify

    def require_secrets(self, sinks: Iterable[str] | None = None) -> None:
        """Before sending: every `${NAME}` of these sinks (default: all) must be set.

        Raises:
            ConfigError: one problem per unset variable, as `file:line: key: message`.
        """
        names = None if sinks is None else set(sinks)
        problems = [
            line
            for sink in self.sinks
            if names is None or sink.name in names
            for line in sink.unresolved
        ]
        if problems:
            raise ConfigError(problems)


_ALL_KEYS = sorted(
    {
        name
        for model in (
            Config,
            PollingConfig,
            FeedConfig,
            TranslationConfig,
            Term,
            WatchlistConfig,
            SinkConfig,
            DeliveryConfig,
            IncidentsConfig,
            BreakingConfig,
            HttpConfig,
            RetentionConfig,
            ClusterConfig,
        )
        for name in model.model_fields
    }
    | {"include"}
)


def _expand_includes(
    source: Source, base: Path, env: dict[str, str], seen: tuple[Path, ...]
) -> None:
    """Replace `- include: FILE` entries in `feeds:` by the feeds the file lists."""
    feeds = source.data.get("feeds") if isinstance(source.data, dict) else None
    if not isinstance(feeds, list):
        return
    expanded: list[Any] = []
    new_locations = {k: v for k, v in source.locations.items() if k[:1] != ("feeds",)}
    if ("feeds",) in source.locations:
        new_locations[("feeds",)] = source.locations[("feeds",)]

    def by_feed(locations: dict[Path_, Any]) -> dict[int, list[tuple[Path_, Any]]]:
        """Locations under `feeds[i]`, grouped by i once, so moving a feed is O(its keys)."""
        grouped: dict[int, list[tuple[Path_, Any]]] = {}
        for key, loc in locations.items():
            if len(key) >= 2 and key[0] == "feeds" and isinstance(key[1], int):
                grouped.setdefault(key[1], []).append((key[2:], loc))
        return grouped

    def move(entries: list[tuple[Path_, Any]], new_index: int) -> None:
        for rest, loc in entries:
            new_locations[("feeds", new_index, *rest)] = loc

    own = by_feed(source.locations)

    def add_catalog(entry_path: Path_, target: object) -> None:
        location = source.where(entry_path)
        if not isinstance(target, str) or not target:
            source.problems.append(problem(location, (*entry_path, "include"), "expected a path"))
            return
        path = (base / target).resolve()
        if path in seen:
            source.problems.append(problem(location, (*entry_path, "include"), "includes itself"))
            return
        if not path.exists():
            source.problems.append(
                problem(location, (*entry_path, "include"), f"no such file: {display_name(path)}")
            )
            return
        if path.suffix.lower() in {".opml", ".xml"}:
            sub = read_opml(path, ("feeds",))
        else:
            sub = read_yaml(path, env, ("feeds",))
            if isinstance(sub.data, dict) and set(sub.data) == {"feeds"}:
                sub.data = sub.data["feeds"]
                sub.locations = {
                    (k[0], *k[2:]) if k[:2] == ("feeds", "feeds") else k: v
                    for k, v in sub.locations.items()
                }
        source.problems.extend(sub.problems)
        source.warnings.extend(sub.warnings)
        if sub.data is None:
            return
        if not isinstance(sub.data, list):
            source.problems.append(
                problem(sub.where(("feeds",)), ("feeds",), "a catalog must be a list of feeds")
            )
            return
        nested = Source(data={"feeds": sub.data}, locations=sub.locations)
        _expand_includes(nested, path.parent, env, (*seen, path))
        source.problems.extend(nested.problems)
        source.warnings.extend(nested.warnings)
        nested_locations = by_feed(nested.locations)
        for index, feed in enumerate(nested.data["feeds"]):
            move(nested_locations.get(index, []), len(expanded))
            expanded.append(feed)

    for index, entry in enumerate(feeds):
        if isinstance(entry, dict) and "include" in entry:
            extra = sorted(set(entry) - {"include"})
            if extra:
                path = ("feeds", index, extra[0])
                source.problems.append(
                    problem(source.where(path), path, "an include entry takes no other keys")
                )
            add_catalog(("feeds", index), entry["include"])
        else:
            move(own.get(index, []), len(expanded))
            expanded.append(entry)
    source.data["feeds"] = expanded
    source.locations = new_locations


_SHOWN_LIMIT = 60


def _shown(value: object) -> str:
    """A value as the user wrote it, short; numbers bare, words quoted."""
    if value is None:
        return "nothing"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = str(value)
    if len(text) > _SHOWN_LIMIT:
        text = text[: _SHOWN_LIMIT - 1] + "…"
    bare = not isinstance(value, str) or _NUMBER.match(text.removeprefix("-"))
    return text if bare else repr(text)


def _bound(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _message(error: ErrorDetails, path: Path_, hidden: bool) -> str:
    """pydantic's error in the user's words, with the fix where there is one.

    `hidden`: the value may be a secret, so it is not repeated.
    """
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    got = "" if hidden else f", not {_shown(value)}"
    if value is None and kind not in ("literal_error", "missing"):
        return "needs a value"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "literal_error":
        return f"must be {ctx['expected']}{got}"
    if kind in ("tuple_type", "list_type", "set_type", "frozen_set_type"):
        key = next((part for part in reversed(path) if isinstance(part, str)), "")
        if hidden or isinstance(value, dict | list | tuple):
            return "must be a list"
        return f"must be a list: write {key}: [{value}]"
    if kind in ("too_short", "string_too_short"):
        least = ctx.get("min_length", 1)
        return "must not be empty" if least == 1 else f"must have at least {least} entries"
    if kind in ("too_long", "string_too_long"):
        return f"must have at most {ctx.get('max_length')} entries{got}"
    if kind in ("string_type", "string_unicode"):
        return f"must be text{got}"
    if kind in ("int_parsing", "int_type", "int_from_float", "int_parsing_size"):
        return f"must be a whole number{got}"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return f"must be a number{got}"
    if kind in ("bool_parsing", "bool_type"):
        return f"must be true or false{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        return f"must be a mapping of keys{got}"
    if kind in ("path_type", "path_not_file", "path_not_directory"):
        return f"must be a path{got}"
    bounds = {
        "greater_than_equal": ("at least", "ge"),
        "greater_than": ("more than", "gt"),
        "less_than_equal": ("at most", "le"),
        "less_than": ("less than", "lt"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        return f"must be {words} {_bound(ctx.get(key))}{got}"
    return f"is not valid here{got}"


def _validation_problems(source: Source, exc: ValidationError) -> list[str]:
    problems = []
    errors = exc.errors(include_url=False)
    inner = {tuple(e["loc"][:end]) for e in errors for end in range(len(e["loc"]))}
    for error in errors:
        path: Path_ = tuple(error["loc"])
        if error["type"] == "too_short" and path in inner:
            continue  # the list is short because an entry was refused: that entry says why
        if (
            path
            and isinstance(path[-1], int)
            and path not in source.locations
            and path[:-1] in source.locations
        ):
            # One value written where a list may stand (`secret: whsec_…`): name the key.
            path = path[:-1]
        if error["type"] == "extra_forbidden":
            key = str(path[-1])
            close = difflib.get_close_matches(key, _ALL_KEYS, n=1)
            message = "unknown key" + (f" (did you mean {close[0]!r}?)" if close else "")
        elif error["type"] == "missing":
            message = "required key is missing"
            if len(path) > 1:
                # A missing key has no line: point at the mapping that should hold it.
                problems.append(problem(source.where(path[:-1]), path, message))
                continue
        else:
            location = source.where(path)
            hidden = path[:1] == ("sinks",) and bool(_SENDING_KEYS & set(path[2:3]))
            message = _message(error, path, hidden or bool(location and location.variables))
            if message.startswith("is empty") and location is not None and location.variables:
                names = ", ".join("${" + name + "}" for name in location.variables)
                verb = "is" if len(location.variables) == 1 else "are"
                message = message.replace("is empty", f"is empty ({names} {verb} set to nothing)")
        problems.append(problem(source.where(path), path, message))
    return problems


def _cross_check(config: Config, source: Source) -> list[str]:
    problems: list[str] = []

    def unique(kind: str, names: list[str]) -> None:
        seen: set[str] = set()
        for index, name in enumerate(names):
            if name in seen:
                path: Path_ = (kind, index, "name")
                problems.append(problem(source.where(path), path, f"duplicate name {name!r}"))
            seen.add(name)

    unique("feeds", [feed.name for feed in config.feeds])
    first_with_url: dict[str, int] = {}
    for index, feed in enumerate(config.feeds):
        first = first_with_url.setdefault(feed.url, index)
        if first != index:
            url_path: Path_ = ("feeds", index, "url")
            where = source.where(("feeds", first, "url"))
            other = config.feeds[first].name
            problems.append(
                problem(
                    source.where(url_path),
                    url_path,
                    f"{feed.name!r} has the same URL as {other!r} ({where}): keep one",
                )
            )
    unique("watchlists", [w.name for w in config.watchlists])
    unique("sinks", [s.name for s in config.sinks])
    sink_names = {s.name for s in config.sinks}
    for w_index, watchlist in enumerate(config.watchlists):
        for n_index, name in enumerate(watchlist.notify or ()):
            if name not in sink_names:
                path: Path_ = ("watchlists", w_index, "notify", n_index)
                known = ", ".join(sorted(sink_names)) or "none are configured"
                problems.append(
                    problem(source.where(path), path, f"no sink named {name!r} (sinks: {known})")
                )
    return problems


@dataclass(frozen=True, slots=True)
class Catalog:
    """An OPML file's feeds as catalog entries (`name`, `url`, `language`, `group`)."""

    feeds: list[dict[str, str]]
    warnings: list[str]
    """One line per outline skipped, as `file:line: why`."""


def read_catalog(path: Path) -> Catalog:
    """The feeds of an OPML file, for `feeds import`.

    Raises:
        ConfigError: the file is not OPML, or two outlines share an xmlUrl.
    """
    source = read_opml(path, ())
    problems = list(source.problems)
    first: dict[str, int] = {}
    for index, feed in enumerate(source.data):
        earlier = first.setdefault(feed["url"], index)
        if earlier != index:
            before = source.where((earlier,))
            line = before.line if before else "?"
            problems.append(
                f"{source.where((index,))}: outline {feed['name']!r} has the same xmlUrl as"
                f" {source.data[earlier]['name']!r} (line {line}): keep one"
            )
    if problems:
        raise ConfigError(problems)
    return Catalog(source.data, source.warnings)


def _sending_key(path: Path_) -> bool:
    return (
        len(path) > 2
        and path[0] == "sinks"
        and isinstance(path[1], int)
        and path[2] in _SENDING_KEYS
    )


def _put(data: Any, path: Path_, value: str) -> None:
    for part in path[:-1]:
        data = data[part]
    data[path[-1]] = value


def _null_words(source: Source, exc: ValidationError) -> bool:
    """Give `null` back as the word where the schema wanted text; whether any was."""
    found = False
    for error in exc.errors(include_url=False):
        location = source.locations.get(tuple(error["loc"]))
        if error["input"] is None and location is not None and location.null_word:
            _put(source.data, tuple(error["loc"]), location.null_word)
            found = True
    return found


def _unresolved_sinks(config: Config, deferred: dict[Path_, list[str]]) -> None:
    """Sinks with unset ${NAME}s keep their name and type and nothing to send with."""
    by_sink: dict[int, list[str]] = {}
    for path, lines in deferred.items():
        by_sink.setdefault(int(path[1]), []).extend(lines)
    sinks = list(config.sinks)
    for index, lines in by_sink.items():
        blank = {
            key: SinkConfig.model_fields[key].get_default(call_default_factory=True)
            for key in _SENDING_KEYS
        }
        sinks[index] = sinks[index].model_copy(update=blank)
        sinks[index]._unresolved = tuple(lines)
    object.__setattr__(config, "sinks", tuple(sinks))


def load_config(
    path: Path | str, env: dict[str, str] | None = None, *, secrets: bool = True
) -> Config:
    """Read, substitute, include and validate a config file.

    `secrets=False` is for commands that send nothing: an unset `${NAME}` in a sink's url,
    secret, headers, token, room or chat_id is then no error; that sink is loaded with nothing
    to send with, and `Config.require_secrets()` names what is missing.

    Raises:
        ConfigError: with every problem found, each as `file:line: key: message`.
    """
    path = Path(path)
    env = environment() if env is None else env
    source = read_yaml(path, env, defer=_sending_key)
    if source.problems and source.data is None:
        raise ConfigError(source.problems)
    if source.data is None:
        source.data = {}
    if not isinstance(source.data, dict):
        raise ConfigError([f"{display_name(path)}:1: the top level must be a mapping of keys"])
    _expand_includes(source, path.resolve().parent, env, (path.resolve(),))
    for internal in ("source", "warnings"):
        if internal in source.data:
            key: Path_ = (internal,)
            source.problems.append(problem(source.where(key), key, "unknown key"))
            del source.data[internal]
    problems = list(source.problems)
    for key, lines in source.deferred.items():
        # Stands in for the unset value, so the rest of its sink is still checked.
        _put(source.data, key, _UNRESOLVED)
        if secrets:
            problems += lines
    try:
        try:
            config = Config.model_validate(
                {**source.data, "source": path.resolve(), "warnings": source.warnings}
            )
        except ValidationError as exc:
            if not _null_words(source, exc):
                raise
            config = Config.model_validate(
                {**source.data, "source": path.resolve(), "warnings": source.warnings}
            )
    except ValidationError as exc:
        raise ConfigError(problems + _validation_problems(source, exc)) from None
    problems += _cross_check(config, source)
    if problems:
        raise ConfigError(problems)
    _unresolved_sinks(config, source.deferred)
    return config
