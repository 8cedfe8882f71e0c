"""config.yaml (DESIGN §4): the loader, includes, ${ENV}, and errors as `file:line: key: message`.

Every test writes real files under tmp_path and runs from there, so problems name files as a
user would see them (`config.yaml`, `feeds/catalog.yaml`).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import Config, load_config, parse_duration
from monitor.errors import ConfigError

FULL_CONFIG = """\
database: monitor.db     # SQLite file
state_dir: state
polling:
  interval: 10m
  timeout: 20s
  concurrency: 16
  per_host: 2
  backfill: 24h
  max_backoff: 1h30m
  user_agent: ${USER_AGENT:-news-monitor-tests}
feeds:
  - include: feeds/catalog.yaml
  - name: Example Kurdish desk
    url: https://news.example.org/ckb/rss
    language: ckb
    interval: 5m
translation:
  target: en
  mode: all
  engines: [argos, nllb]
watchlists:
  - name: khanaqin
    severity: high
    terms:
      - Khanaqin
      - term: suicide bomber
        aliases: [انتحاري, مفجر انتحاري, خۆتەقێنەر, xwekuj]
    none: [exercise, drill]
    notify: [desk-chat]
  - name: diyala
    terms: [Diyala]
sinks:
  - name: desk-chat
    type: slack
    url: ${SLACK_WEBHOOK_URL}
  - name: siem
    type: webhook
    url: https://siem.example.org/hooks/news
    secret: ${WEBHOOK_SECRET}
delivery:
  retry_for: 1d
"""

CATALOG = """\
# A catalog: a YAML list of feeds.
- name: Rudaw (Sorani)
  url: https://www.rudaw.net/sorani/rss
  language: ckb
- name: Shafaq News (Arabic)
  url: https://shafaq.com/rss/ar
  language: ar
  interval: 90s
"""

MINIMAL = """\
feeds:
  - name: A
    url: https://a.example.org/rss
watchlists:
  - name: w
    terms: [x]
"""


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, needle: str) -> int:
    """The 1-based line of the only line of `text` that contains `needle`."""
    lines = [n for n, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} is on lines {lines}"
    return lines[0]


def problems_of(path: Path, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={} if env is None else env)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def only_problem(text: str, env: dict[str, str] | None = None) -> str:
    problems = problems_of(write(Path("config.yaml"), text), env)
    assert len(problems) == 1, problems
    return problems[0]


# A valid configuration ---------------------------------------------------------------------


@pytest.fixture
def full_config(tmp_path: Path) -> Config:
    write(tmp_path / "feeds" / "catalog.yaml", CATALOG)
    credentials = tmp_path / "credentials"
    write(credentials / "SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/secret\n")
    write(credentials / "WEBHOOK_SECRET", "whsec_from_credentials\n")
    path = write(tmp_path / "config.yaml", FULL_CONFIG)
    env = {"CREDENTIALS_DIRECTORY": str(credentials), "WEBHOOK_SECRET": "whsec_from_env"}
    return load_config(path, env=env)


def test_full_example_config_loads(full_config: Config, tmp_path: Path) -> None:
    config = full_config
    assert config.source == tmp_path / "config.yaml"
    assert config.polling.concurrency == 16
    assert config.polling.per_host == 2
    assert config.translation.mode == "all"
    assert config.translation.engines == ("argos", "nllb")
    assert [w.name for w in config.watchlists] == ["khanaqin", "diyala"]
    khanaqin = config.watchlists[0]
    assert khanaqin.severity == "high"
    assert [t.term for t in khanaqin.terms] == ["Khanaqin", "suicide bomber"]
    assert khanaqin.terms[0].aliases == ()
    assert khanaqin.terms[1].aliases == ("انتحاري", "مفجر انتحاري", "خۆتەقێنەر", "xwekuj")
    assert khanaqin.none == ("exercise", "drill")
    assert config.sinks_for(khanaqin) == ("desk-chat",)
    assert config.watchlists[1].severity == "medium"
    assert config.sinks_for(config.watchlists[1]) == ("desk-chat", "siem")


def test_config_is_immutable(full_config: Config) -> None:
    with pytest.raises(ValueError, match="frozen"):
        full_config.polling.concurrency = 1  # type: ignore[misc]


def test_env_default_is_used_when_the_variable_is_unset(full_config: Config) -> None:
    assert full_config.polling.user_agent == "news-monitor-tests"


def test_env_variable_overrides_its_default(tmp_path: Path) -> None:
    path = write(tmp_path / "config.yaml", "polling:\n  user_agent: ${USER_AGENT:-fallback}\n")
    config = load_config(path, env={"USER_AGENT": "desk-bot/2.0"})
    assert config.polling.user_agent == "desk-bot/2.0"


def test_secret_is_read_from_credentials_directory(full_config: Config) -> None:
    slack = full_config.sinks[0]
    # The credential file's trailing newline is not part of the secret.
    assert slack.url == "https://hooks.slack.com/services/T0/B0/secret"


def test_environment_wins_over_credentials_directory(full_config: Config) -> None:
    assert full_config.sinks[1].secret == ("whsec_from_env",)


def test_env_substitution_inside_a_longer_string(tmp_path: Path) -> None:
    path = write(
        tmp_path / "config.yaml",
        "sinks:\n  - name: n\n    type: ntfy\n    url: https://${NTFY_HOST}/${TOPIC:-alerts}\n",
    )
    config = load_config(path, env={"NTFY_HOST": "ntfy.example.org"})
    assert config.sinks[0].url == "https://ntfy.example.org/alerts"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("10m", timedelta(minutes=10)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1w", timedelta(weeks=1)),
        ("500ms", timedelta(milliseconds=500)),
        (" 2h 15m ", timedelta(hours=2, minutes=15)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "10 minutes", "1h30", "m10", "-5m", True, [1]])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("number", "fix"),
    [(45, "45s"), ("10", "10s"), (600, "600s or 10m"), (90.5, "90.5s"), (7200, "7200s or 2h")],
)
def test_parse_duration_refuses_a_number_without_a_unit(number: object, fix: str) -> None:
    with pytest.raises(ValueError, match=f"has no unit: write {fix}$"):
        parse_duration(number)


def test_durations_in_the_config(full_config: Config) -> None:
    polling = full_config.polling
    assert polling.interval == timedelta(minutes=10)
    assert polling.timeout == timedelta(seconds=20)
    assert polling.backfill == timedelta(hours=24)
    assert polling.max_backoff == timedelta(hours=1, minutes=30)
    assert full_config.delivery.retry_for == timedelta(days=1)
    desk = full_config.feeds[-1]
    assert desk.interval == timedelta(minutes=5)
    assert full_config.feed_interval(desk) == timedelta(minutes=5)
    rudaw = full_config.feeds[0]
    assert rudaw.interval is None
    assert full_config.feed_interval(rudaw) == timedelta(minutes=10)
    assert full_config.feeds[1].interval == timedelta(seconds=90)


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    elsewhere = tmp_path / "etc" / "news-monitor"
    path = write(elsewhere / "config.yaml", "database: data/monitor.db\nstate_dir: .\n")
    config = load_config(path, env={})
    assert config.database == elsewhere / "data" / "monitor.db"
    assert config.state_dir == elsewhere


def test_absolute_database_path_is_kept(tmp_path: Path) -> None:
    target = tmp_path / "var" / "lib" / "monitor.db"
    path = write(tmp_path / "etc" / "config.yaml", f"database: {target}\n")
    assert load_config(path, env={}).database == target


def test_empty_config_file_gives_the_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "config.yaml", "# nothing yet\n"), env={})
    assert config.feeds == ()
    assert config.polling.interval == timedelta(minutes=10)
    assert config.database == tmp_path / "monitor.db"


def test_yaml_catalog_include(full_config: Config) -> None:
    feeds = [(f.name, f.url, f.language) for f in full_config.feeds]
    assert feeds == [
        ("Rudaw (Sorani)", "https://www.rudaw.net/sorani/rss", "ckb"),
        ("Shafaq News (Arabic)", "https://shafaq.com/rss/ar", "ar"),
        ("Example Kurdish desk", "https://news.example.org/ckb/rss", "ckb"),
    ]


OPML = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Subscriptions</title></head>
  <body>
    <outline text="Kurdish">
      <outline type="rss" text="Kurdistan 24 (Sorani)" xmlUrl="https://www.kurdistan24.net/ckb/rss.xml" language="ckb"/>
      <outline type="rss" title="Rudaw (English)" text="Rudaw" xmlUrl="https://www.rudaw.net/english/rss"/>
    </outline>
    <outline text="A folder without a feed"/>
  </body>
</opml>
"""  # noqa: E501


def test_opml_include(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "subscriptions.opml", OPML)
    path = write(tmp_path / "config.yaml", "feeds:\n  - include: feeds/subscriptions.opml\n")
    config = load_config(path, env={})
    assert [(f.name, f.url, f.language) for f in config.feeds] == [
        ("Kurdistan 24 (Sorani)", "https://www.kurdistan24.net/ckb/rss.xml", "ckb"),
        ("Rudaw (English)", "https://www.rudaw.net/english/rss", None),
    ]


def test_nested_includes_resolve_relative_to_each_file(tmp_path: Path) -> None:
    write(
        tmp_path / "feeds" / "all.yaml",
        """\
feeds:
  - name: Outer
    url: https://outer.example.org/rss
  - include: kurdish/sorani.yaml
  - include: subscriptions.opml
""",
    )
    write(
        tmp_path / "feeds" / "kurdish" / "sorani.yaml",
        "- name: Inner\n  url: https://inner.example.org/rss\n  language: ckb\n",
    )
    write(tmp_path / "feeds" / "subscriptions.opml", OPML)
    path = write(
        tmp_path / "config.yaml",
        """\
feeds:
  - name: First
    url: https://first.example.org/rss
  - include: feeds/all.yaml
  - name: Last
    url: https://last.example.org/rss
""",
    )
    config = load_config(path, env={})
    assert [f.name for f in config.feeds] == [
        "First",
        "Outer",
        "Inner",
        "Kurdistan 24 (Sorani)",
        "Rudaw (English)",
        "Last",
    ]
    assert config.feeds[2].language == "ckb"


def test_the_shipped_config_is_valid() -> None:
    shipped = Path(__file__).parent.parent / "config.yaml"
    config = load_config(shipped, env={"SLACK_WEBHOOK_URL": "https://hooks.example/x"})
    assert config.feeds
    assert {w.name for w in config.watchlists} >= {"khanaqin", "diyala"}


# Bad configurations: each problem is `file:line: key: message` ------------------------------


def test_unknown_key_suggests_the_right_one() -> None:
    text = MINIMAL + "polling:\n  intervall: 10m\n"
    line = line_of(text, "intervall")
    assert only_problem(text) == (
        f"config.yaml:{line}: polling.intervall: unknown key (did you mean 'interval'?)"
    )


def test_unknown_top_level_key_without_a_close_match() -> None:
    text = "zzz_qqq: 1\n" + MINIMAL
    assert only_problem(text) == "config.yaml:1: zzz_qqq: unknown key"


def test_source_is_not_a_settable_key() -> None:
    text = MINIMAL + "source: other.yaml\n"
    line = line_of(text, "source:")
    assert only_problem(text) == f"config.yaml:{line}: source: unknown key"


def test_bad_duration() -> None:
    text = MINIMAL + "polling:\n  timeout: soon\n"
    line = line_of(text, "timeout")
    assert only_problem(text) == (
        f"config.yaml:{line}: polling.timeout: 'soon' is not a duration:"
        " write e.g. 90s, 10m, 2h or 1d"
    )


def test_zero_interval_is_rejected() -> None:
    text = """\
feeds:
  - name: A
    url: https://a.example.org/rss
    interval: 0s
"""
    assert only_problem(text) == "config.yaml:4: feeds[0].interval: must be longer than 0s"


def test_feed_without_url_points_at_the_feed() -> None:
    text = """\
feeds:
  - name: A
    url: https://a.example.org/rss
  - name: No URL here
    language: ar
"""
    assert only_problem(text) == "config.yaml:4: feeds[1].url: required key is missing"


def test_wrong_type() -> None:
    text = MINIMAL + "polling:\n  concurrency: lots\n"
    line = line_of(text, "concurrency")
    assert only_problem(text) == (
        f"config.yaml:{line}: polling.concurrency: must be a whole number, not 'lots'"
    )


def test_invalid_severity() -> None:
    text = """\
watchlists:
  - name: w
    severity: urgent
    terms: [x]
"""
    assert only_problem(text) == (
        "config.yaml:3: watchlists[0].severity:"
        " must be 'info', 'low', 'medium', 'high' or 'critical', not 'urgent'"
    )


def test_watchlist_without_terms() -> None:
    text = "watchlists:\n  - name: w\n    terms: []\n"
    problem = only_problem(text)
    assert problem.startswith("config.yaml:3: watchlists[0].terms: ")


def test_unset_environment_variable() -> None:
    text = """\
sinks:
  - name: siem
    type: webhook
    url: https://siem.example.org/hooks/news
    secret: ${WEBHOOK_SECRET}
"""
    assert only_problem(text, env={"OTHER": "x"}) == (
        "config.yaml:5: sinks[0].secret: environment variable WEBHOOK_SECRET is not set"
        " (set it, add a credential file of that name, or write ${WEBHOOK_SECRET:-default})"
    )


def test_missing_credential_file_is_an_unset_variable(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    text = "polling:\n  user_agent: ${AGENT}\n"
    problem = only_problem(text, env={"CREDENTIALS_DIRECTORY": str(credentials)})
    assert problem.startswith(
        "config.yaml:2: polling.user_agent: environment variable AGENT is not set"
    )


def test_include_of_a_missing_file() -> None:
    text = """\
feeds:
  - name: A
    url: https://a.example.org/rss
  - include: feeds/nope.yaml
"""
    assert only_problem(text) == "config.yaml:4: feeds[1].include: no such file: feeds/nope.yaml"


def test_include_entry_takes_no_other_keys(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "catalog.yaml", CATALOG)
    text = "feeds:\n  - include: feeds/catalog.yaml\n    language: ar\n"
    assert only_problem(text) == (
        "config.yaml:3: feeds[0].language: an include entry takes no other keys"
    )


def test_error_inside_an_included_catalog_names_the_catalog_line(tmp_path: Path) -> None:
    catalog = CATALOG.replace("interval: 90s", "interval: every so often")
    write(tmp_path / "feeds" / "catalog.yaml", catalog)
    text = MINIMAL.replace("feeds:\n", "feeds:\n  - include: feeds/catalog.yaml\n", 1)
    line = line_of(catalog, "every so often")
    # The key is the feed's position in the merged list: the catalog's are 0 and 1, then A.
    assert only_problem(text) == (
        f"feeds/catalog.yaml:{line}: feeds[1].interval: 'every so often' is not a duration:"
        " write e.g. 90s, 10m, 2h or 1d"
    )


def test_error_in_a_nested_catalog_names_the_innermost_file(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "all.yaml", "- include: kurdish/kurmanji.yaml\n")
    kurmanji = """\
- name: ANF (Kurmanji)
  url: https://anfkurdi.com/feed.rss
  language: Kurmanji
"""
    write(tmp_path / "feeds" / "kurdish" / "kurmanji.yaml", kurmanji)
    text = "feeds:\n  - include: feeds/all.yaml\n"
    assert only_problem(text) == (
        "feeds/kurdish/kurmanji.yaml:3: feeds[0].language:"
        " 'Kurmanji' is not a language code such as ckb, kmr, ar or en"
    )


def test_invalid_yaml_in_a_catalog(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "broken.yaml", "- name: A\n  url: [unclosed\n")
    text = "feeds:\n  - include: feeds/broken.yaml\n"
    problem = only_problem(text)
    assert problem.startswith("feeds/broken.yaml:3: invalid YAML: ")


def test_catalog_that_is_not_a_list(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "mapping.yaml", "name: A\nurl: https://a.example.org/rss\n")
    text = "feeds:\n  - include: feeds/mapping.yaml\n"
    assert only_problem(text) == "feeds/mapping.yaml:1: feeds: a catalog must be a list of feeds"


def test_catalog_including_itself(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "loop.yaml", "- include: loop.yaml\n")
    text = "feeds:\n  - include: feeds/loop.yaml\n"
    assert only_problem(text) == "feeds/loop.yaml:1: feeds[0].include: includes itself"


def test_non_http_url_in_an_opml_catalog(tmp_path: Path) -> None:
    opml = OPML.replace("https://www.rudaw.net/english/rss", "feed://www.rudaw.net/english/rss")
    write(tmp_path / "feeds" / "subscriptions.opml", opml)
    text = "feeds:\n  - include: feeds/subscriptions.opml\n"
    line = line_of(opml, "feed://")
    assert only_problem(text) == (
        f"feeds/subscriptions.opml:{line}: feeds[1].url:"
        " 'feed://www.rudaw.net/english/rss' is not an http(s) URL"
    )


def test_duplicate_feed_names() -> None:
    text = """\
feeds:
  - name: Rudaw
    url: https://www.rudaw.net/english/rss
  - name: Rudaw
    url: https://www.rudaw.net/sorani/rss
"""
    assert only_problem(text) == "config.yaml:4: feeds[1].name: duplicate name 'Rudaw'"


def test_duplicate_feed_name_from_a_catalog_points_into_the_catalog(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "catalog.yaml", CATALOG)
    text = """\
feeds:
  - name: Shafaq News (Arabic)
    url: https://shafaq.com/rss/ar?again
  - include: feeds/catalog.yaml
"""
    line = line_of(CATALOG, "name: Shafaq")
    assert only_problem(text) == (
        f"feeds/catalog.yaml:{line}: feeds[2].name: duplicate name 'Shafaq News (Arabic)'"
    )


def test_duplicate_key_in_a_mapping() -> None:
    text = "polling:\n  interval: 5m\n  interval: 10m\n"
    assert only_problem(text) == "config.yaml:3: polling.interval: duplicate key"


def test_notify_naming_an_unknown_sink() -> None:
    text = """\
watchlists:
  - name: khanaqin
    terms: [Khanaqin]
    notify:
      - desk-chat
      - pager
sinks:
  - name: desk-chat
    type: slack
    url: https://hooks.slack.com/services/T0/B0/x
"""
    assert only_problem(text) == (
        "config.yaml:6: watchlists[0].notify[1]: no sink named 'pager' (sinks: desk-chat)"
    )


def test_notify_when_no_sink_is_configured() -> None:
    text = "watchlists:\n  - name: w\n    terms: [x]\n    notify: [pager]\n"
    assert only_problem(text) == (
        "config.yaml:4: watchlists[0].notify[0]: no sink named 'pager' (sinks: none are configured)"
    )


def test_invalid_yaml_syntax_gives_its_line() -> None:
    text = """\
database: monitor.db
polling:
  interval: 10m
 timeout: 20s
"""
    problem = only_problem(text)
    assert problem.startswith("config.yaml:4: invalid YAML: ")


def test_non_http_url() -> None:
    text = "feeds:\n  - name: A\n    url: ftp://a.example.org/rss\n"
    assert only_problem(text) == (
        "config.yaml:3: feeds[0].url: 'ftp://a.example.org/rss' is not an http(s) URL"
    )


def test_invalid_sink_type() -> None:
    text = "sinks:\n  - name: s\n    type: pigeon\n    url: https://x.example.org\n"
    assert only_problem(text).startswith("config.yaml:3: sinks[0].type: must be 'slack'")


def test_top_level_not_a_mapping() -> None:
    text = "- name: A\n  url: https://a.example.org/rss\n"
    assert only_problem(text) == "config.yaml:1: the top level must be a mapping of keys"


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_bytes("database: خانقين.db\n".encode("cp1256"))
    problems = problems_of(tmp_path / "config.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("config.yaml: not UTF-8 text")


def test_several_problems_are_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path / "feeds" / "catalog.yaml", "- name: C\n  url: https://c.example.org\n")
    text = """\
database: data/monitor.db
polling:
  intervall: 10m
  timeout: soon
  concurrency: lots
feeds:
  - name: A
    url: ftp://example.org/x
  - name: B
  - include: feeds/missing.yaml
  - include: feeds/catalog.yaml
watchlists:
  - name: w
    severity: urgent
    terms: [x]
sinks:
  - name: s
    type: webhook
    url: https://siem.example.org/hooks
    secret: ${NOPE}
"""
    problems = problems_of(write(tmp_path / "config.yaml", text))
    expected = [
        "config.yaml:3: polling.intervall: unknown key (did you mean 'interval'?)",
        "config.yaml:4: polling.timeout: 'soon' is not a duration: write e.g. 90s, 10m, 2h or 1d",
        "config.yaml:5: polling.concurrency: must be a whole number, not 'lots'",
        "config.yaml:8: feeds[0].url: 'ftp://example.org/x' is not an http(s) URL",
        "config.yaml:9: feeds[1].url: required key is missing",
        "config.yaml:10: feeds[2].include: no such file: feeds/missing.yaml",
        "config.yaml:14: watchlists[0].severity:"
        " must be 'info', 'low', 'medium', 'high' or 'critical', not 'urgent'",
        "config.yaml:20: sinks[0].secret: environment variable NOPE is not set"
        " (set it, add a credential file of that name, or write ${NOPE:-default})",
    ]
    assert sorted(problems) == sorted(expected)


def test_cross_checks_report_every_duplicate_and_unknown_sink() -> None:
    text = """\
feeds:
  - {name: A, url: "https://a.example.org/rss"}
  - {name: A, url: "https://b.example.org/rss"}
watchlists:
  - {name: w, terms: [x], notify: [nope]}
  - {name: w, terms: [y]}
sinks:
  - {name: s, type: ntfy, url: "https://ntfy.example.org/t"}
  - {name: s, type: ntfy, url: "https://ntfy.example.org/u"}
"""
    problems = problems_of(write(Path("config.yaml"), text))
    assert problems == [
        "config.yaml:3: feeds[1].name: duplicate name 'A'",
        "config.yaml:6: watchlists[1].name: duplicate name 'w'",
        "config.yaml:9: sinks[1].name: duplicate name 's'",
        "config.yaml:5: watchlists[0].notify[0]: no sink named 'nope' (sinks: s)",
    ]


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    problems = problems_of(tmp_path / "absent.yaml")
    assert len(problems) == 1
    assert problems[0].startswith("absent.yaml: cannot read: ")
