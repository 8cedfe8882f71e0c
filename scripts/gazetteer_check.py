"""Check the gazetteer's spellings for the errors its third-party source is known to have.

    .venv/bin/python scripts/gazetteer_check.py [--file monitor/text/data/gazetteer.yaml]

Prints one line per problem, `file:line: entry 'id': lang 'spelling': what`, and exits 1 when
there is any (0 when there is none, 2 when the file cannot be read). What is checked:

* script: ar, ckb and kmr-Arab in the Arabic script, en and kmr in the Latin script; no digits
  or brackets (the source has `9 نیسان`, `هندیە (طویریج)`);
* Latin placeholders: a Latin letter in an Arabic-script column (the source's krdName is often
  just the English name);
* Kurdish text in Arabic (the source's name_ar has `دهۆک`, `هەڵەبجە`): Kurdish or Persian
  letters (ە ێ ۆ ڕ ڵ ڤ گ چ پ ژ ی ک) in `ar`;
* Arabic text in Sorani (the source's Kirkuk is `كەركوک`): Arabic-only letters (ة ي ى ك أ إ)
  or a leading article ال in `ckb`, and a word-final ه where Sorani writes ە;
* prefixes the source carries (محافظة, قضاء, ناحية, پارێزگای, قەزای, ناحیەی, District,
  Governorate, Province, Sub-district), unless the bare name is one of the `left_out` common
  words and the compound is the point (قضاء القائم);
* one spelling in two entries (after normalization, as the matcher compares them), all of
  them rather than the first the loader stops at; and a spelling that is a `left_out` word;
* spacing: leading, trailing or doubled spaces;
* a word listed twice in `left_out` (YAML would keep only the last reason).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.text.gazetteer import LANGUAGES  # noqa: E402
from monitor.text.normalize import normalize_term  # noqa: E402

DEFAULT = ROOT / "monitor" / "text" / "data" / "gazetteer.yaml"
ARABIC_SCRIPT = {"ar", "ckb", "kmr-Arab"}
ARABIC_LETTERS = re.compile(r"^[\u0621-\u064a\u066e-\u06d3\u06d5\u200c ]+$")
LATIN_LETTERS = re.compile(r"^[A-Za-z\u00c0-\u024f' .-]+$")
KURDISH_IN_ARABIC = set("ەێۆڕڵڤگچپژیک")
ARABIC_IN_SORANI = set("ةيىكأإ")
PREFIXES = re.compile(
    r"^(?:محافظة|قضاء|ناحية|پارێزگای|قەزای|ناحیەی)\s|\s(?:District|Governorate|Province)$"
    r"|^(?:Sub-district|Subdistrict|Nahiya|Qadha)\s",
    re.IGNORECASE,
)


def _scalar_lines(node: yaml.Node) -> dict[str, int]:
    """Line (1-based) of each key of a mapping node."""
    assert isinstance(node, yaml.MappingNode)
    return {key.value: key.start_mark.line + 1 for key, _ in node.value}


def _problem(spelling: str, language: str, left_out: set[str]) -> list[str]:
    found = []
    if spelling != spelling.strip() or "  " in spelling:
        found.append("leading, trailing or doubled space")
    if re.search(r"[0-9\u0660-\u0669\u06f0-\u06f9()\[\]]", spelling):
        found.append("digits or brackets (a source artefact)")
    words = spelling.strip()
    if language in ARABIC_SCRIPT:
        if re.search("[A-Za-z]", words):
            found.append("Latin letters in an Arabic-script column (a placeholder?)")
        elif not ARABIC_LETTERS.match(words):
            found.append("not in the Arabic script")
    elif not LATIN_LETTERS.match(words):
        found.append("not in the Latin script")
    if language == "ar" and set(words) & KURDISH_IN_ARABIC:
        found.append("Kurdish or Persian letters in Arabic (Kurdish text in name_ar?)")
    if language == "ckb":
        if set(words) & ARABIC_IN_SORANI:
            found.append("Arabic-only letters in Sorani (ك for ک, ي for ی, ة for ە)")
        if words.startswith("ال"):
            found.append("the Arabic article in Sorani (Arabic text in name_ckb?)")
        if any(word.endswith("ه") for word in words.split()):
            found.append("word-final ه in Sorani, which writes ە")
    prefix = PREFIXES.search(words)
    if prefix is not None:
        bare = normalize_term(words[: prefix.start()] + words[prefix.end() :])
        if bare not in left_out:
            found.append(f"prefix or suffix {prefix.group().strip()!r} (the bare name is enough)")
    return found


def check(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(root, yaml.MappingNode) and isinstance(data, dict)
    nodes = dict((key.value, value) for key, value in root.value)
    left_out = {normalize_term(word) for word in data.get("left_out", {})}
    problems: list[str] = []
    owner: dict[str, tuple[str, int]] = {}
    for node, raw in zip(nodes["entries"].value, data["entries"], strict=True):
        lines = _scalar_lines(node)
        entry_id = raw.get("id", "?")
        for language in LANGUAGES:
            for spelling in raw.get(language, []):
                line = lines.get(language, 0)
                where = f"{path.name}:{line}: entry {entry_id!r}: {language} {spelling!r}"
                problems.extend(
                    f"{where}: {what}" for what in _problem(spelling, language, left_out)
                )
                key = normalize_term(spelling)
                first = owner.setdefault(key, (entry_id, line))
                if first[0] != entry_id:
                    problems.append(f"{where}: also a spelling of {first[0]!r} (line {first[1]})")
                if key in left_out:
                    problems.append(f"{where}: a left_out word")
    seen: dict[str, int] = {}
    for word, _ in nodes["left_out"].value if "left_out" in nodes else ():
        line = word.start_mark.line + 1
        earlier = seen.setdefault(normalize_term(word.value), line)
        if earlier != line:
            problems.append(f"{path.name}:{line}: left_out {word.value!r}: also on line {earlier}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--file", type=Path, default=DEFAULT)
    args = parser.parse_args()
    try:
        problems = check(args.file)
    except (OSError, yaml.YAMLError, KeyError, AssertionError) as exc:
        print(f"{args.file}: cannot check: {exc}", file=sys.stderr)
        return 2
    for line in problems:
        print(line)
    print(f"{args.file.name}: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
