"""Reading config sources while remembering where every value came from.

YAML is composed to nodes (not loaded) so each key and item keeps its file and line; OPML
catalogs are read with expat for the same reason. `${NAME}` is substituted here, once, so no
later stage reads the environment.

Plain scalars stay text (only `null`, `~` and nothing are null, and `null` comes back as the
word where the schema wants text): the schema, not YAML 1.1's guesses, decides what `off`,
`no`, `1984` or `600` mean where they are written. Anchors and aliases are refused, so a file's
size bounds the work of reading it.
"""

from __future__ import annotations

import os
import re
import xml.parsers.expat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

Path_ = tuple[str | int, ...]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True, slots=True)
class Location:
    file: str
    line: int
    variables: tuple[str, ...] = ()
    """The `${NAME}`s substituted into the value written here."""
    null_word: str | None = None
    """`null` (or `Null`, `NULL`, `~`) as written here, read as null: the word, where the schema
    wants text (a term `null`)."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(slots=True)
class Source:
    """Plain data plus a map from each key path to where it was written."""

    data: Any
    locations: dict[Path_, Location] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    deferred: dict[Path_, list[str]] = field(default_factory=dict)
    """Unset `${NAME}`s that `read_yaml` was told to defer: path -> problems."""
    warnings: list[str] = field(default_factory=list)

    def where(self, path: Path_) -> Location | None:
        """The location of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.locations.get(tuple(path[:end]))
            if found is not None:
                return found
        return None


def format_key(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def problem(location: Location | None, path: Path_, message: str) -> str:
    where = str(location) if location else "?"
    return f"{where}: {format_key(path)}: {message}"


def display_name(path: Path) -> str:
    """Paths under the working directory are shown relative, as the user typed them."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _LineLoader(yaml.SafeLoader):
    pass


# libyaml composes ten times faster and keeps the same line marks; fall back where it is absent.
class _Composer(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Resolves plain scalars to null or text only; pydantic reads text as a number or a bool
    where the schema wants one (`yes`, `off`, `16`), and leaves it text everywhere else."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, re.Pattern[str]]]]] = {}


_Composer.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


def _anchor_problem(text: str, name: str) -> str | None:
    """The first anchor or alias in `text`, as a problem; None when there is none."""
    if "&" not in text and "*" not in text:
        return None
    try:
        for event in yaml.parse(text, Loader=_Composer):
            anchor = getattr(event, "anchor", None)
            if anchor is not None:
                sign = "*" if isinstance(event, yaml.AliasEvent) else "&"
                line = event.start_mark.line + 1 if event.start_mark else 0
                return (
                    f"{name}:{line}: YAML anchors and aliases"
                    f" ({sign}{anchor}) are not allowed: write the value out"
                )
    except yaml.MarkedYAMLError:
        return None  # compose() reports it with its line
    return None


def _substitute_env(
    text: str, env: dict[str, str], credentials: Path | None
) -> tuple[str, list[str]]:
    missing: list[str] = []

    def lookup(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if credentials is not None:
            secret = credentials / name
            if secret.is_file():
                return secret.read_text(encoding="utf-8").rstrip("\r\n")
        if default is not None:
            return default
        missing.append(name)
        return ""

    return _ENV_REF.sub(lookup, text), missing


def read_yaml(
    path: Path,
    env: dict[str, str],
    prefix: Path_ = (),
    defer: Callable[[Path_], bool] | None = None,
) -> Source:
    """Parse one YAML file into a `Source`; syntax errors become problems, not exceptions.

    An unset `${NAME}` where `defer(path)` holds (a sink's secrets: only commands that send need
    them) is recorded in `deferred`; anywhere else it is a problem.
    """
    name = display_name(path)
    source = Source(data=None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        source.problems.append(f"{name}: cannot read: {exc.strerror or exc}")
        return source
    except UnicodeDecodeError as exc:
        source.problems.append(f"{name}: not UTF-8 text (byte {exc.start})")
        return source
    refused = _anchor_problem(text, name)
    if refused is not None:
        source.problems.append(refused)
        return source
    try:
        node = yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark else 0
        source.problems.append(f"{name}:{line}: invalid YAML: {exc.problem}")
        return source
    credentials_dir = env.get("CREDENTIALS_DIRECTORY")
    credentials = Path(credentials_dir) if credentials_dir else None
    loader = _LineLoader("")

    def build(node: yaml.Node, here: Path_) -> Any:
        source.locations.setdefault(here, Location(name, node.start_mark.line + 1))
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = loader.construct_object(key_node)
                key = str(key)
                child = (*here, key)
                source.locations[child] = Location(name, key_node.start_mark.line + 1)
                if key in out:
                    source.problems.append(problem(source.locations[child], child, "duplicate key"))
                out[key] = build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [build(item, (*here, i)) for i, item in enumerate(node.value)]
        value = loader.construct_object(node)
        if value is None and node.value and isinstance(node, yaml.ScalarNode):
            location = source.locations[here]
            source.locations[here] = Location(location.file, location.line, null_word=node.value)
        if isinstance(value, str) and "${" in value:
            location = source.locations[here]
            source.locations[here] = Location(
                location.file, location.line, tuple(m.group(1) for m in _ENV_REF.finditer(value))
            )
            value, missing = _substitute_env(value, env, credentials)
            for var in missing:
                unset = problem(
                    location,
                    here,
                    f"environment variable {var} is not set"
                    " (set it, add a credential file of that name, or write ${"
                    f"{var}:-default}})",
                )
                if defer is not None and defer(here):
                    source.deferred.setdefault(here, []).append(unset)
                else:
                    source.problems.append(unset)
        return value

    source.data = None if node is None else build(node, prefix)
    return source


def read_opml(path: Path, prefix: Path_) -> Source:
    """Feeds from an OPML file: every <outline> with an xmlUrl, keeping line numbers.

    Outlines without an xmlUrl that hold others are folders: their titles, joined by ` / `,
    become each feed's `group`. Any other outline without an xmlUrl is a warning.
    """
    name = display_name(path)
    source = Source(data=[])
    feeds: list[dict[str, Any]] = source.data
    parser = xml.parsers.expat.ParserCreate()
    # One entry per open <outline>: its title when it is a folder, and whether it holds others.
    open_outlines: list[tuple[str | None, int, list[bool]]] = []

    def start(tag: str, attrs: dict[str, str]) -> None:
        if tag != "outline":
            return
        if open_outlines:
            open_outlines[-1][2][0] = True
        title = attrs.get("title") or attrs.get("text")
        line = parser.CurrentLineNumber
        if not attrs.get("xmlUrl"):
            open_outlines.append((title, line, [False]))
            return
        open_outlines.append((None, line, [True]))
        here = (*prefix, len(feeds))
        source.locations[here] = Location(name, line)
        entry: dict[str, Any] = {"name": title or attrs["xmlUrl"], "url": attrs["xmlUrl"]}
        if attrs.get("language"):
            entry["language"] = attrs["language"]
        folders = [folder for folder, _, _ in open_outlines[:-1] if folder]
        if folders:
            entry["group"] = " / ".join(folders)
        for key in entry:
            source.locations[(*here, key)] = Location(name, line)
        feeds.append(entry)

    def end(tag: str) -> None:
        if tag != "outline":
            return
        title, line, holds = open_outlines.pop()
        if not holds[0]:
            shown = repr(title) if title else "without a title"
            source.warnings.append(f"{name}:{line}: outline {shown} has no xmlUrl: skipped")

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    try:
        parser.Parse(path.read_bytes(), True)
    except OSError as exc:
        source.problems.append(f"{name}: cannot read: {exc.strerror or exc}")
    except xml.parsers.expat.ExpatError as exc:
        source.problems.append(f"{name}:{exc.lineno}: invalid OPML: {exc}")
    return source


def environment() -> dict[str, str]:
    return dict(os.environ)
