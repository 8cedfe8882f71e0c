"""Feed text is untrusted: make it inert for each format, and cut it cleanly at a limit.

Every function here is pure. The escapers work character by character (each input character
maps to a fixed output string), which is what lets `fit` cut *before* escaping and still
measure the escaped result exactly: a cut can never land inside `&amp;` or after a lone `\\`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from urllib.parse import quote

__all__ = [
    "ELLIPSIS",
    "ESCAPERS",
    "WORD_JOINER",
    "clean",
    "defuse",
    "escape_html",
    "escape_markdown",
    "escape_slack",
    "fit",
    "safe_url",
    "utf8_len",
    "utf16_len",
]

WORD_JOINER = "\u2060"
"""Invisible, zero-width, and not a word character: `@\u2060everyone` reads as `@everyone` but
no service's mention parser (Slack, Discord, Mattermost, Telegram, Matrix's legacy push rules,
Apprise's Discord plugin) sees a mention in it."""
ELLIPSIS = "…"

_LONE_SURROGATES = re.compile("[\ud800-\udfff]")
# Bidi embeddings, overrides and isolates: they let a title display text in another order than
# it is stored (`\u202egnp.exe`). Marks such as U+200F stay: Arabic and Kurdish text needs them.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069]")
_LINE_BREAKS = re.compile("[\n\r\x0b\x0c\x85\u2028\u2029]+")
# C0/C1 controls and the interlinear annotation characters; tab and line breaks become spaces
# first. Also the non-characters U+FFFE/U+FFFF, which some JSON parsers refuse.
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ufff9-\ufffb\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]+")

_MARKDOWN_SPECIAL = frozenset("\\`*_{}[]()#+-.!|~<>:$=")
"""ASCII punctuation that CommonMark, Discord or Mattermost give a meaning to. CommonMark lets
any ASCII punctuation be backslash-escaped, so escaping one that means nothing is harmless."""


def clean(text: str | None, *, multiline: bool = False) -> str:
    """Remove what can break a payload or disguise text; collapse whitespace.

    Lone surrogates (unencodable), bidi overrides and isolates, control characters are dropped;
    line breaks become spaces, or single newlines when `multiline`.
    """
    if not text:
        return ""
    text = _LONE_SURROGATES.sub("", text)
    text = _BIDI_CONTROLS.sub("", text)
    text = text.replace("\t", " ")
    text = _CONTROLS.sub("", text)
    text = _LINE_BREAKS.sub("\n" if multiline else " ", text)
    if multiline:
        lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
        return "\n".join(line for line in lines if line)
    return _SPACES.sub(" ", text).strip()


def _defuse_char(char: str) -> str:
    return "@" + WORD_JOINER if char == "@" else char


def defuse(text: str) -> str:
    """Neutralize mentions in plain text: a word joiner after every `@`."""
    return text.replace("@", "@" + WORD_JOINER)


_SLACK_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_ENTITIES = {**_SLACK_ENTITIES, '"': "&quot;"}


def _slack_char(char: str) -> str:
    return _SLACK_ENTITIES.get(char) or _defuse_char(char)


def escape_slack(text: str) -> str:
    """Slack's three control characters as entities, so `<!channel>` and `<@U1>` are text."""
    return "".join(_slack_char(char) for char in text)


def _html_char(char: str) -> str:
    return _HTML_ENTITIES.get(char) or _defuse_char(char)


def escape_html(text: str) -> str:
    """HTML text or attribute value, with only the entities Telegram's parser knows."""
    return "".join(_html_char(char) for char in text)


def _markdown_char(char: str) -> str:
    if char in _MARKDOWN_SPECIAL:
        return "\\" + char
    return _defuse_char(char)


def escape_markdown(text: str) -> str:
    """Backslash before every markdown-significant ASCII character; mentions defused.

    Escaping `<`, `:` and `.` also stops `<@123>`, `<t:…>`, `:emoji:` tokens and bare links
    (`https\\://…`) from being recognized.
    """
    return "".join(_markdown_char(char) for char in text)


ESCAPERS: dict[str, Callable[[str], str]] = {
    "none": str,
    "plain": _defuse_char,
    "slack": _slack_char,
    "html": _html_char,
    "markdown": _markdown_char,
}
"""Per-character escapers by name, for `fit`: `none` for text that is already escaped."""


def utf16_len(text: str) -> int:
    """Length as JavaScript and Telegram count it: astral characters count twice."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def _extends(char: str) -> bool:
    """Whether `char` belongs to the grapheme cluster before it (approximately, per UAX #29)."""
    code = ord(char)
    return (
        unicodedata.category(char) in ("Mn", "Mc", "Me")
        or code in (0x200C, 0x200D)
        or 0xFE00 <= code <= 0xFE0F
        or 0x1F3FB <= code <= 0x1F3FF
        or 0xE0020 <= code <= 0xE007F
        or 0xE0100 <= code <= 0xE01EF
    )


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF


def _cluster_start(text: str, index: int) -> int:
    """The largest cut position ≤ `index` that does not split a grapheme cluster."""
    while 0 < index < len(text):
        if _extends(text[index]) or text[index - 1] == "\u200d":
            index -= 1
            continue
        if _regional(text[index]) and _regional(text[index - 1]):
            run = 0
            while index - run - 1 >= 0 and _regional(text[index - run - 1]):
                run += 1
            if run % 2:  # an odd run before: text[index] is the second half of a flag
                index -= 1
                continue
        break
    return index


def fit(
    text: str,
    limit: int,
    *,
    escape: str = "plain",
    measure: Callable[[str], int] = len,
    ellipsis: str = ELLIPSIS,
) -> str:
    """`text` escaped for a format and cut so that `measure(result) <= limit`.

    The cut falls between grapheme clusters of the *unescaped* text, so it never splits a
    character, a combining sequence, an emoji sequence or an escape (`&amp;`, `\\*`), and it
    ends with `ellipsis` when anything was cut.
    """
    escape_char = ESCAPERS[escape]
    pieces = [escape_char(char) for char in text]
    whole = "".join(pieces)
    if measure(whole) <= limit:
        return whole
    budget = limit - measure(ellipsis)
    if budget < 0:
        return ""
    used = index = 0
    while index < len(pieces) and used + measure(pieces[index]) <= budget:
        used += measure(pieces[index])
        index += 1
    index = _cluster_start(text, index)
    return "".join(pieces[:index]).rstrip() + ellipsis


# Links ---------------------------------------------------------------------------------------

_URL_SAFE = "!#$%&*+,/:;=?~"
"""Kept as they are; everything else outside A-Z a-z 0-9 `_.-` is percent-encoded, which
neutralizes `( ) [ ] < > " ' | \\ \\` { } ^ @` and spaces for every markup a link lands in."""
MAX_URL = 2000


def safe_url(url: str | None) -> str | None:
    """An item link fit to put in a message, or None.

    Only http(s) with a host, no user info (`https://bank.example@evil.example/` is a classic
    disguise), at most 2,000 characters once encoded (under every service's URL limit).
    """
    import httpx  # here, so that only a message being rendered loads it (issue 14)

    if not url:
        return None
    candidate = clean(url)
    if not candidate or " " in candidate:
        return None
    try:
        parsed = httpx.URL(candidate)
    except (httpx.InvalidURL, ValueError, UnicodeError):
        return None
    if parsed.scheme not in ("http", "https") or not parsed.host or parsed.userinfo:
        return None
    encoded = quote(str(parsed), safe=_URL_SAFE)
    if len(encoded) > MAX_URL:
        return None
    return encoded
