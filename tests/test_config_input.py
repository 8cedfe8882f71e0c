"""config.yaml as people write it: YAML words, pydantic-free errors, durations, aliases, terms.

Every problem is one line, `file:line: key: message`, in the user's words.
"""

from __future__ import annotations

import re
import tracemalloc
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from monitor.cli import cli
from monitor.config import Config, load_config
from monitor.errors import ConfigError

MINIMAL = """\
feeds:
  - name: A
    url: https://a.example.org/rss
watchlists:
  - name: w
    terms: [x]
"""

PYDANTIC_WORDING = (
    "Input should",
    "valid tuple",
    "valid string",
    "after validation",
    "Value error,",
    "validation error",
    "Field required",
    "Extra inputs",
    "should have at least",
)
PROBLEM_LINE = re.compile(r"^[\w./-]+:\d+: [\w\[\].-]+: \S.*$")


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(text: str, env: dict[str, str] | None = None) -> Config:
    return load_config(write(Path("config.yaml"), text), env={} if env is None else env)


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(text, env)
    return info.value.problems


def only_problem(text: str, env: dict[str, str] | None = None) -> str:
    problems = problems_of(text, env)
    assert len(problems) == 1, problems
    return problems[0]


# YAML words are words (12.1) ---------------------------------------------------------------


def test_translation_mode_off_as_the_readme_writes_it() -> None:
    assert load(MINIMAL + "translation:\n  mode: off\n").translation.mode == "off"
    assert load(MINIMAL + "translation: {mode: off}\n").translation.mode == "off"


def test_yes_no_on_off_are_words_in_terms_names_and_language_codes() -> None:
    text = """\
feeds:
  - name: 1984
    url: https://a.example.org/rss
    language: no
watchlists:
  - name: on
    terms: [No, yes, Off, null, 2026-01-01]
    none: [y, n]
"""
    config = load(text)
    assert config.feeds[0].name == "1984"
    assert config.feeds[0].language == "no"
    watchlist = config.watchlists[0]
    assert watchlist.name == "on"
    assert [t.term for t in watchlist.terms] == ["No", "yes", "Off", "null", "2026-01-01"]
    assert watchlist.none == ("y", "n")


def test_boolean_keys_take_yes_no_on_off_and_true_false() -> None:
    text = """\
polling:
  allow_private: yes
feeds:
  - {name: A, url: "https://a.example.org/rss", verified: no, full_text: on}
  - {name: B, url: "https://b.example.org/rss", verified: false, full_text: True}
"""
    config = load(text)
    assert config.polling.allow_private is True
    assert [(f.verified, f.full_text) for f in config.feeds] == [(False, True), (False, True)]


def test_optional_key_written_null_is_unset() -> None:
    config = load(MINIMAL + "polling:\n  user_agent: null\nhttp: ~\n")
    assert config.polling.user_agent is None
    assert config.http is None


def test_null_is_a_word_where_the_schema_wants_text() -> None:
    text = MINIMAL.replace("terms: [x]", "terms: [x, Null]\n    none: [NULL, ~]")
    watchlist = load(text).watchlists[0]
    assert [t.term for t in watchlist.terms] == ["x", "Null"]
    assert watchlist.none == ("NULL", "~")


# Every error in the user's words (12.1) -----------------------------------------------------

ERRORS = [
    (
        "watchlists:\n  - name: w\n    terms: Kirkuk\n",
        3,
        "watchlists[0].terms: must be a list: write terms: [Kirkuk]",
    ),
    ("watchlists:\n  - name: w\n    terms: []\n", 3, "watchlists[0].terms: must not be empty"),
    (
        "watchlists:\n  - name: w\n    terms: [x]\n    none: drill\n",
        4,
        "watchlists[0].none: must be a list: write none: [drill]",
    ),
    (
        "watchlists:\n  - name: w\n    terms: [x]\n    none: [drill, '']\n",
        4,
        "watchlists[0].none[1]: is empty: remove it",
    ),
    (
        "watchlists:\n  - name: w\n    terms: [{term: x, aliases: y}]\n",
        3,
        "watchlists[0].terms[0].aliases: must be a list: write aliases: [y]",
    ),
    (
        "watchlists:\n  - name: w\n    terms: [x]\n    severity: urgent\n",
        4,
        "watchlists[0].severity: must be 'info', 'low', 'medium', 'high' or 'critical',"
        " not 'urgent'",
    ),
    (
        "translation:\n  mode: loud\n",
        2,
        "translation.mode: must be 'all', 'matched' or 'off', not 'loud'",
    ),
    (
        "translation:\n  mode: false\n",
        2,
        "translation.mode: must be 'all', 'matched' or 'off', not 'false'",
    ),
    (
        "translation:\n  engines: [argos, google]\n",
        2,
        "translation.engines[1]: must be 'argos', 'nllb' or 'madlad', not 'google'",
    ),
    (
        "translation:\n  engines: argos\n",
        2,
        "translation.engines: must be a list: write engines: [argos]",
    ),
    (
        "polling:\n  concurrency: lots\n",
        2,
        "polling.concurrency: must be a whole number, not 'lots'",
    ),
    ("polling:\n  concurrency: 1.5\n", 2, "polling.concurrency: must be a whole number, not 1.5"),
    ("polling:\n  concurrency: 0\n", 2, "polling.concurrency: must be at least 1, not 0"),
    ("polling:\n  concurrency: 5000\n", 2, "polling.concurrency: must be at most 1024, not 5000"),
    ("polling:\n  jitter: lots\n", 2, "polling.jitter: must be a number, not 'lots'"),
    ("polling:\n  jitter: 0.9\n", 2, "polling.jitter: must be at most 0.5, not 0.9"),
    (
        "polling:\n  allow_private: maybe\n",
        2,
        "polling.allow_private: must be true or false, not 'maybe'",
    ),
    ("polling: 5\n", 1, "polling: must be a mapping of keys, not 5"),
    ("polling:\n  user_agent: [a, b]\n", 2, "polling.user_agent: must be text, not a list"),
    ("feeds:\n  - name:\n    url: https://a.example.org/rss\n", 2, "feeds[0].name: needs a value"),
    (
        "feeds:\n  - name: ''\n    url: https://a.example.org/rss\n",
        2,
        "feeds[0].name: must not be empty",
    ),
    ("feeds:\n  - name: A\n", 2, "feeds[0].url: required key is missing"),
    ("feeds:\n  - [a, b]\n", 2, "feeds[0]: must be a mapping of keys, not a list"),
    ("database: [a]\n", 1, "database: must be a path or a postgresql:// URL, not a list"),
    (
        "sinks:\n  - {name: s, type: ntfy, url: 'https://n.example.org/t', rate: 0}\n",
        2,
        "sinks[0].rate: must be more than 0, not 0",
    ),
    (
        "sinks:\n  - {name: s, type: ntfy, url: 'https://n.example.org/t', rate: fast}\n",
        2,
        "sinks[0].rate: must be a number, not 'fast'",
    ),
    (
        "sinks:\n  - {name: s, type: webhook, url: 'https://n.example.org/t', headers: [a]}\n",
        2,
        "sinks[0].headers: must be a mapping of keys",
    ),
    (
        "sinks:\n  - {name: s, type: pigeon, url: 'https://n.example.org/t'}\n",
        2,
        "sinks[0].type: must be 'slack', 'discord', 'teams', 'mattermost', 'telegram', 'matrix',"
        " 'ntfy', 'apprise' or 'webhook', not 'pigeon'",
    ),
    (
        "http:\n  listen: nowhere\n",
        2,
        "http.listen: 'nowhere' is not host:port, e.g. 127.0.0.1:9464",
    ),
    (
        "polling:\n  intervall: 10m\n",
        2,
        "polling.intervall: unknown key (did you mean 'interval'?)",
    ),
]


@pytest.mark.parametrize(("text", "line", "expected"), ERRORS, ids=[e[2] for e in ERRORS])
def test_every_error_is_in_the_users_words(text: str, line: int, expected: str) -> None:
    assert only_problem(text) == f"config.yaml:{line}: {expected}"


def test_no_error_shows_pydantic_wording() -> None:
    # Every case above, plus a config with one of every kind of mistake at once.
    seen = [only_problem(text) for text, _, _ in ERRORS]
    seen += problems_of(
        """\
database: {a: b}
state_dir: [x]
polling: {interval: [1], concurrency: x, per_host: -1, max_bytes: 1, jitter: x, user_agent: 1}
feeds:
  - {name: [x], url: 5, language: 7, interval: {}, verified: 7, group: [x]}
  - 7
translation: {target: [], mode: [], engines: 5, max_chars: x, compute_type: 9}
watchlists:
  - {name: {}, severity: 5, terms: [[x], {term: []}, {aliases: 5}], none: 5, notify: 5}
  - {name: w, terms: {x: y}}
sinks:
  - {name: s, type: [], url: [], secret: {}, headers: {a: [b]}, rate: x, timeout: x}
  - {name: t, type: matrix}
  - 9
delivery: {retry_for: x, digest_after: x, digest_window: []}
http: {listen: []}
retention: 5
"""
    )
    for problem in seen:
        assert PROBLEM_LINE.match(problem), problem
        assert not any(phrase in problem for phrase in PYDANTIC_WORDING), problem


# Durations need a unit (12.5) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("polling:\n  interval: 600\n", "polling.interval: 600 has no unit: write 600s or 10m"),
        ("polling:\n  timeout: 20\n", "polling.timeout: 20 has no unit: write 20s"),
        ("polling:\n  backfill: '3600'\n", "polling.backfill: 3600 has no unit: write 3600s or 1h"),
        (
            "delivery:\n  retry_for: 86400\n",
            "delivery.retry_for: 86400 has no unit: write 86400s or 1d",
        ),
        ("retention:\n  items: 1.5\n", "retention.items: 1.5 has no unit: write 1.5s"),
    ],
)
def test_a_duration_without_a_unit_is_refused_with_the_fix(text: str, expected: str) -> None:
    assert only_problem(text) == f"config.yaml:2: {expected}"


def test_a_feed_interval_without_a_unit_is_refused() -> None:
    text = "feeds:\n  - name: A\n    url: https://a.example.org/rss\n    interval: 300\n"
    assert (
        only_problem(text) == "config.yaml:4: feeds[0].interval: 300 has no unit: write 300s or 5m"
    )


def test_durations_with_units_still_load() -> None:
    config = load("polling:\n  interval: 90s\n  timeout: 1m30s\n")
    assert config.polling.interval == timedelta(seconds=90)
    assert config.polling.timeout == timedelta(seconds=90)


# YAML aliases and anchors are refused (15.5) --------------------------------------------------


def billion_laughs(levels: int) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        refs = ",".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def peak_bytes_of(action: object) -> tuple[list[str], int]:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            action()  # type: ignore[operator]
        return info.value.problems, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("levels", [5, 9])
def test_alias_bomb_as_the_config_fails_at_once(levels: int) -> None:
    # 10**9 strings if expanded; refused before any of it is built.
    path = write(Path("config.yaml"), "# bomb\n" + billion_laughs(levels))
    problems, peak = peak_bytes_of(lambda: load_config(path, env={}))
    assert problems == [
        "config.yaml:2: YAML anchors and aliases (&a0) are not allowed: write the value out"
    ]
    assert peak < 2_000_000


@pytest.mark.parametrize("levels", [5, 9])
def test_alias_bomb_in_an_included_catalog_fails_at_once(levels: int) -> None:
    catalog = "- name: A\n  url: https://a.example.org/rss\n  group: &g x\n- *g\n"
    write(Path("feeds/bomb.yaml"), catalog + "# " + billion_laughs(levels).replace("\n", "\n# "))
    write(Path("feeds/laughs.yaml"), billion_laughs(levels))
    path = write(
        Path("config.yaml"),
        "feeds:\n  - include: feeds/bomb.yaml\n  - include: feeds/laughs.yaml\n",
    )
    problems, peak = peak_bytes_of(lambda: load_config(path, env={}))
    assert problems == [
        "feeds/bomb.yaml:3: YAML anchors and aliases (&g) are not allowed: write the value out",
        "feeds/laughs.yaml:1: YAML anchors and aliases (&a0) are not allowed: write the value out",
    ]
    assert peak < 2_000_000


def test_an_alias_alone_is_refused_at_its_line() -> None:
    # An alias to an undefined anchor is a YAML syntax error; an alias to a defined one names
    # the anchor's line first.
    text = 'feeds:\n  - name: A\n    url: "https://a.example.org/rss"\n    group: *nope\n'
    assert only_problem(text).startswith("config.yaml:4: ")


# Terms that can never match (15.14) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        (r"\u200b", r"'\u200b' (U+200B)"),
        (r"\u0640", r"'\u0640' (U+0640)"),
        (r"\u0651", r"'\u0651' (U+0651)"),
        (r"\u200c\u0640 ", r"'\u200c\u0640' (U+200C U+0640)"),
    ],
)
def test_a_term_that_normalizes_to_nothing_is_refused(written: str, shown: str) -> None:
    text = f'watchlists:\n  - name: w\n    terms: [x, "{written}"]\n'
    assert only_problem(text) == (
        f"config.yaml:3: watchlists[0].terms[1].term: {shown} is only invisible characters"
        " or marks: it can never match"
    )


def test_an_alias_or_none_term_that_normalizes_to_nothing_is_refused() -> None:
    text = """\
watchlists:
  - name: w
    terms:
      - term: suicide bomber
        aliases: [انتحاري, "\\u0640\\u0651"]
    none: [drill, "\\u200b"]
"""
    assert problems_of(text) == [
        r"config.yaml:5: watchlists[0].terms[0].aliases[1]: '\u0640\u0651' (U+0640 U+0651)"
        " is only invisible characters or marks: it can never match",
        r"config.yaml:6: watchlists[0].none[1]: '\u200b' (U+200B)"
        " is only invisible characters or marks: it can never match",
    ]


def test_terms_with_marks_on_letters_still_load() -> None:
    config = load('watchlists:\n  - name: w\n    terms: ["خانەقین", "انتحاريّ"]\n')
    assert [t.term for t in config.watchlists[0].terms] == ["خانەقین", "انتحاريّ"]


# Empty secrets and URLs (12.3) ----------------------------------------------------------------

WEBHOOK = """\
sinks:
  - name: siem
    type: webhook
    url: https://siem.example.org/hooks/news
    secret: ${WEBHOOK_SECRET}
"""


def test_an_empty_webhook_secret_is_refused_naming_the_variable() -> None:
    assert only_problem(WEBHOOK, env={"WEBHOOK_SECRET": ""}) == (
        "config.yaml:5: sinks[0].secret: is empty (${WEBHOOK_SECRET} is set to nothing):"
        " give the whsec_… secret, or remove the key to send unsigned"
    )


def test_an_empty_secret_written_in_the_file_is_refused() -> None:
    text = WEBHOOK.replace("${WEBHOOK_SECRET}", "[whsec_MTIzNDU2Nzg5MDEyMzQ1Njc4OTA=, '']")
    assert only_problem(text) == (
        "config.yaml:5: sinks[0].secret[1]: is empty:"
        " give the whsec_… secret, or remove the key to send unsigned"
    )


@pytest.mark.parametrize(
    ("sink", "line", "expected"),
    [
        ("{name: s, type: slack, url: ''}", 2, "sinks[0].url: is empty: a slack sink needs url"),
        (
            "{name: s, type: ntfy, url: 'https://n.example.org/t', token: ''}",
            2,
            "sinks[0].token: is empty: give a value or remove the key",
        ),
        (
            "{name: s, type: telegram, token: '', chat_id: '1'}",
            2,
            "sinks[0].token: is empty: a telegram sink needs token",
        ),
        (
            "{name: s, type: matrix, url: 'https://m.example.org', room: '!r:x', token: ' '}",
            2,
            "sinks[0].token: is empty: a matrix sink needs token",
        ),
    ],
)
def test_an_empty_url_or_token_is_refused(sink: str, line: int, expected: str) -> None:
    assert only_problem(f"sinks:\n  - {sink}\n") == f"config.yaml:{line}: {expected}"


def test_an_empty_url_from_the_environment_names_the_variable() -> None:
    text = "sinks:\n  - name: s\n    type: slack\n    url: ${SLACK_WEBHOOK_URL}\n"
    assert only_problem(text, env={"SLACK_WEBHOOK_URL": ""}) == (
        "config.yaml:4: sinks[0].url: is empty (${SLACK_WEBHOOK_URL} is set to nothing):"
        " a slack sink needs url"
    )


# Two feeds, one URL (12.12) ------------------------------------------------------------------


def test_two_feeds_with_one_url_are_refused_naming_both(tmp_path: Path) -> None:
    write(
        tmp_path / "feeds" / "catalog.yaml",
        "- name: Rudaw\n  url: https://www.rudaw.net/english/rss\n",
    )
    text = """\
feeds:
  - name: Rudaw English
    url: https://www.rudaw.net/english/rss
  - include: feeds/catalog.yaml
"""
    assert only_problem(text) == (
        "feeds/catalog.yaml:2: feeds[1].url: 'Rudaw' has the same URL as 'Rudaw English'"
        " (config.yaml:3): keep one"
    )


OPML_FOLDERS = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Kurdish">
      <outline text="Sorani" title="Sorani">
        <outline type="rss" text="K24" xmlUrl="https://www.kurdistan24.net/ckb/rss.xml"/>
      </outline>
      <outline type="rss" text="Rudaw" xmlUrl="https://www.rudaw.net/english/rss"/>
    </outline>
    <outline type="rss" text="Loose" xmlUrl="https://loose.example.org/rss"/>
  </body>
</opml>
"""


def test_opml_folders_become_groups(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "subs.opml", OPML_FOLDERS)
    config = load("feeds:\n  - include: feeds/subs.opml\n")
    assert [(f.name, f.group) for f in config.feeds] == [
        ("K24", "Kurdish / Sorani"),
        ("Rudaw", "Kurdish"),
        ("Loose", None),
    ]


def test_an_included_opml_outline_without_a_feed_is_a_warning_check_config_shows(
    tmp_path: Path,
) -> None:
    opml = OPML_FOLDERS.replace(
        '<outline type="rss" text="Loose" xmlUrl="https://loose.example.org/rss"/>',
        '<outline type="rss" text="Loose" htmlUrl="https://loose.example.org/"/>',
    )
    write(tmp_path / "feeds" / "subs.opml", opml)
    config = load("feeds:\n  - include: feeds/subs.opml\n")

    assert [f.name for f in config.feeds] == ["K24", "Rudaw"]
    assert config.warnings == ("feeds/subs.opml:11: outline 'Loose' has no xmlUrl: skipped",)
    result = CliRunner().invoke(cli, ["--config", "config.yaml", "check-config"])
    assert result.exit_code == 0
    assert "warning: feeds/subs.opml:11: outline 'Loose' has no xmlUrl: skipped" in result.stderr


def test_warnings_is_not_a_key_a_config_may_set() -> None:
    assert problems_of("warnings: [hello]\n") == ["config.yaml:1: warnings: unknown key"]
