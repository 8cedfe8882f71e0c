"""Spelling variants of gazetteer names: alternations real writers use that no text fold may make.

`monitor.text.normalize` folds what is safe to fold in all text (alef and hamza forms, ک/ك,
ی/ي/ى, ە/ة/ه, Latin diacritics). The alternations here would merge real words if folded in all
text (Sorani بوو "was" and بو, Arabic موصل and موصول), so they are generated instead, only from
the gazetteer's spellings and only for the language the spelling is in. Some are for names
(places), some for terms (phrases of the language, whose grammar they follow):

* `ar`: `hamza` a final اء written ا and back (جلولاء / جلولا); `definite` (terms) the article
  on every word, as Arabic adjectives agree (هجوم انتحاري → الهجوم الانتحاري).
* `ckb` and `kmr-Arab` (Sorani; Badini, Kurmanji in Arabic script):
  `waw` و ↔ وو inside a word (کەرکووک / کەرکوک, مەخمور / مەخموور);
  `yeh` ێ → ی (ئۆتۆمبێل / ئۆتۆمبیل);
  `arabic-keyboard` ۆ ڕ ڵ ێ ڤ گ پ چ ژ → و ر ل ی ف ک ب ج ز, all at once, as Sorani typed
  on an Arabic keyboard comes out (ە → ه and ی → ي are folds already);
  `ezafe-definite` (ckb terms) the definite phrase, first word -ی → -ە
  (هێرشی خۆکوژی → هێرشە خۆکوژی, which then takes -ەکە).
* `kmr` (Latin script; circumflexes are a fold already): `ezafe` (terms) the first word of
  a phrase with each ezafe or indefinite ending -a -ê -ên -î -eke -eka
  (êrîşa xwekujî → êrîşên xwekujî).
* `en` (names only: romanizations, not English words): `u-o` u ↔ ou ↔ o (Tuz / Touz,
  Khurmatu / Khormatou); `ai-ei` ai ↔ ay ↔ ei ↔ ey (Sulaymaniyah / Suleimaniyah); `iyah`
  the endings -iyah -iya -ia -iyeh -iyya -iyyah; `ah` a final -a ↔ -ah (Baquba / Baqubah);
  `double` a doubled letter written once (Qayyarah / Qayarah).

A variant that is a common word (`COMMON_WORDS`: Rania the given name, رانیه, Soleimani …)
or a spelling of another gazetteer entry is dropped. Each spelling yields at most
`MAX_VARIANTS` variants. Every function here works on folded forms (`normalize_term`'s).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache

__all__ = [
    "COMMON_WORDS",
    "MAX_VARIANTS",
    "RULES",
    "RULE_NAMES",
    "Rule",
    "is_common_word",
    "spelling_variants",
]

MAX_VARIANTS = 128
_PER_RULE = 64

# Words a generated variant must never be, and that no inflected match may be (folded): they
# are other words in the text. Found by bench/folds.py on the corpus and by the hard negatives
# of tests/data/places.tsv.
COMMON_WORDS = frozenset(
    {
        "رانیه",  # Rania, a given name (ڕانیە on an Arabic keyboard)
        "سلیمانی",  # Arabic سليماني, Soleimani the person (سلێمانی with ێ → ی)
        "دوکان",  # Sorani "shop" (دووکان, Dukan, with وو → و)
        "پردی",  # Sorani "the bridge of" (پردێ, Altun Kupri, with ێ → ی)
        "بردی",  # Sorani "took it", Arabic بردي (پردێ on an Arabic keyboard)
        "شیخان",  # Persian and Arabic "sheikhs" (شێخان, Sheikhan, with ێ → ی)
        "ورمی",  # Arabic ورمي "and throwing" (ورمێ, Urmia, with ێ → ی)
        "کویر",  # Persian "desert" (گوێڕ, Gwer, on an Arabic keyboard)
        "بوسه",  # Persian "kiss" (بۆسە, ambush, on an Arabic keyboard)
        "حله",  # Arabic حلة "outfit", as in بحلة جديدة (حڵە, Hilla, on an Arabic keyboard)
        "شنو",  # Iraqi Arabic "what" (شنۆ, Oshnavieh, on an Arabic keyboard)
        "ana",  # Turkish, Spanish and a given name (Anah with -ah → -a)
        "het",  # Dutch "the" (Heet, Hit, with the double letter once)
        "nimrod",  # the biblical name and the English word (Nimrud with u → o)
        "samara",  # the Russian city and a given name (Samarra with one r)
        "gower",  # the Welsh peninsula and a surname (Guwer with u → o)
        "kuya",  # Tagalog "elder brother", common in Philippine English (Koya with o → u)
        "کوکس",  # Arabic كوكس, Cox (کۆکس, Koks, on an Arabic keyboard)
        "دیرک",  # Arabic ديرك, Derek (دێرک, Derik, with ێ → ی)
        "fayda",  # Turkish "benefit" (Faida with ai → ay)
        "sorani",  # the Sorani dialect (Kurmanji Soranî), not Soran with the ending -î
        "rania",  # the given name, not Ranya (Raniya → -ia)
        "sulaiman",  # Suleiman the person: never Sulaymaniyah or Sulaiman Bek shortened
        "suleiman",
        "sulayman",
        "suleyman",
        "tuz",  # Turkish "salt" (Tooz → -u-), left out of the gazetteer for that reason
        "toz",  # Turkish "dust"
    }
)

# Qasem Soleimani and the other ways his name is romanized, which the city's Sulaimani would
# otherwise reach by u-o and ai-ei.
_COMMON_PATTERN = re.compile("s(?:o|ou)l(?:ai|ay|ei|ey)mani|sul(?:ei|ey)mani")
_KEYBOARD = str.maketrans("ۆڕڵێڤگپچژ", "ورلیفکبجز")
# After these letters و is a consonant (w), not the vowel that وو spells.
_VOWEL_LETTERS = frozenset("اهیۆێو")


def _product(word: str, spans: Sequence[tuple[int, int, tuple[str, ...]]]) -> set[str]:
    """Every way of writing `word` with each span replaced by one of its alternatives."""
    if not spans:
        return set()
    found: set[str] = set()
    for choice in itertools.product(*(alts for _, _, alts in spans)):
        pieces, position = [], 0
        for (start, end, _), alt in zip(spans, choice, strict=True):
            pieces += [word[position:start], alt]
            position = end
        pieces.append(word[position:])
        found.add("".join(pieces))
        if len(found) >= _PER_RULE:
            break
    found.discard(word)
    return found


def _per_word(rule: Callable[[str], set[str]]) -> Callable[[str], set[str]]:
    """A rule on one word, applied to each word of a form in turn."""

    def apply(form: str) -> set[str]:
        words = form.split(" ")
        options = [sorted({word} | rule(word)) for word in words]
        combos = itertools.islice(itertools.product(*options), _PER_RULE + 1)
        return {" ".join(combo) for combo in combos} - {form}

    return apply


def _waw(word: str) -> set[str]:
    spans = []
    for run in re.finditer("و+", word):
        start, end = run.span()
        if start == 0:
            continue  # the conjunction or a consonant w
        if end - start >= 2:
            spans.append((start, end, ("وو", "و")))
        elif word[start - 1] not in _VOWEL_LETTERS and (end == len(word) or word[end] != "ا"):
            spans.append((start, end, ("و", "وو")))
    return _product(word, spans)


def _yeh(word: str) -> set[str]:
    return _product(word, [(m.start(), m.end(), ("ێ", "ی")) for m in re.finditer("ێ", word)])


def _keyboard(form: str) -> set[str]:
    return {form.translate(_KEYBOARD)} - {form}


_U_O = re.compile("ou|oo|u|o")
_AI_EI = re.compile("ai|ay|ei|ey")
_IYAH = re.compile("(?:iyyah|iyya|iyah|iyeh|iya|ia)$")
_AH = re.compile("(?<=.{4}[^aeiouy])(?:ah|a)$")
_DOUBLE = re.compile(r"([a-z])\1")


def _alternatives(pattern: re.Pattern[str], alts: tuple[str, ...]) -> Callable[[str], set[str]]:
    def rule(word: str) -> set[str]:
        return _product(word, [(m.start(), m.end(), alts) for m in pattern.finditer(word)])

    return rule


def _u_o(word: str) -> set[str]:
    # Not the first letter: Oudeh / Udeh are rare, and u- starts many English words.
    spans = [(m.start(), m.end(), ("u", "ou", "o")) for m in _U_O.finditer(word) if m.start()]
    return _product(word, spans)


def _definite(form: str) -> set[str]:
    words = form.split(" ")
    if len(words) < 2 or any(word.startswith("ال") for word in words):
        return set()
    return {" ".join("ال" + word for word in words)}


def _hamza(word: str) -> set[str]:
    if word.endswith("اء"):
        return {word[:-1]}
    return {word + "ء"} if word.endswith("ا") and len(word) > 3 else set()


def _sorani_definite(form: str) -> set[str]:
    first, space, rest = form.partition(" ")
    if not space or not first.endswith("ی") or first.endswith("ێکی"):
        return set()
    return {first[:-1] + "ه " + rest}


_KMR_EZAFE = ("eke", "eka", "en", "a", "e", "i")


def _kurmanji_ezafe(form: str) -> set[str]:
    first, space, rest = form.partition(" ")
    ending = next((e for e in _KMR_EZAFE if first.endswith(e) and len(first) > len(e) + 2), None)
    if not space or ending is None:
        return set()
    stem = first[: -len(ending)]
    return {f"{stem}{other} {rest}" for other in _KMR_EZAFE} - {form}


def _double(word: str) -> set[str]:
    collapsed = _DOUBLE.sub(r"\1", word)
    return {collapsed} - {word}


_ARABIC_KURDISH = ("ckb", "kmr-Arab")


@dataclass(frozen=True, slots=True)
class Rule:
    """A named variant rule for the spellings of some languages, of names, terms or both."""

    name: str
    languages: tuple[str, ...]
    description: str
    apply: Callable[[str], set[str]]
    kinds: str = "both"
    """"names" (places: transliterations and proper names), "terms" (phrases of the language,
    whose grammar the rule follows) or "both"."""


RULES: tuple[Rule, ...] = (
    Rule(
        "definite",
        ("ar",),
        "the article on every word (هجوم انتحاري → الهجوم الانتحاري)",
        _definite,
        "terms",
    ),
    Rule("hamza", ("ar",), "final اء ↔ ا (جلولاء / جلولا)", _per_word(_hamza)),
    Rule("waw", _ARABIC_KURDISH, "و ↔ وو inside a word (کەرکووک / کەرکوک)", _per_word(_waw)),
    Rule("yeh", _ARABIC_KURDISH, "ێ → ی (ئۆتۆمبێل / ئۆتۆمبیل)", _per_word(_yeh)),
    Rule("arabic-keyboard", _ARABIC_KURDISH, "ۆ ڕ ڵ ێ ڤ گ پ چ ژ → و ر ل ی ف ک ب ج ز", _keyboard),
    Rule(
        "ezafe-definite",
        ("ckb",),
        "the definite phrase: first word -ی → -ە (هێرشی خۆکوژی → هێرشە خۆکوژییەکە)",
        _sorani_definite,
        "terms",
    ),
    Rule(
        "ezafe",
        ("kmr",),
        "the first word's ezafe -a -ê -ên -î -eke -eka (êrîşa xwekujî → êrîşên xwekujî)",
        _kurmanji_ezafe,
        "terms",
    ),
    Rule("u-o", ("en",), "u ↔ ou ↔ o (Tuz / Touz, Khurmatu / Khormatou)", _per_word(_u_o), "names"),
    Rule(
        "ai-ei",
        ("en",),
        "ai ↔ ay ↔ ei ↔ ey (Sulaimaniyah / Suleimaniyah)",
        _per_word(_alternatives(_AI_EI, ("ai", "ay", "ei", "ey"))),
        "names",
    ),
    Rule(
        "iyah",
        ("en",),
        "-iyah ↔ -iya ↔ -ia ↔ -iyeh ↔ -iyya(h)",
        _per_word(_alternatives(_IYAH, ("iyah", "iya", "ia", "iyeh", "iyya", "iyyah"))),
        "names",
    ),
    Rule(
        "ah",
        ("en",),
        "final -a ↔ -ah in a word of six letters or more (Baquba / Baqubah)",
        _per_word(_alternatives(_AH, ("a", "ah"))),
        "names",
    ),
    Rule(
        "double",
        ("en",),
        "a doubled letter written once (Qayyarah / Qayarah)",
        _per_word(_double),
        "names",
    ),
)
RULE_NAMES = tuple(rule.name for rule in RULES)


@cache
def spelling_variants(
    form: str, language: str, term: bool = False, rules: frozenset[str] | None = None
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """(variant, names of the rules that made it) for a folded gazetteer spelling.

    The rules of `language` for names (or, with `term`, for terms) are applied in `RULES`
    order, each to the spelling and to what the earlier ones made; `rules` limits them to those
    named (all when None). A spelling of three letters or fewer (Kut, PKK, شنۆ) takes none:
    its variants are words of some language (Turkish kot, Iraqi Arabic شنو). Variants in
    `COMMON_WORDS` are left out; the spelling itself is not among the results.
    """
    if len(form) <= 3:
        return ()
    made: dict[str, tuple[str, ...]] = {form: ()}
    for rule in RULES:
        if language not in rule.languages or rule.kinds == ("names" if term else "terms"):
            continue
        if rules is not None and rule.name not in rules:
            continue
        for base, via in list(made.items()):
            for variant in sorted(rule.apply(base)):
                if variant not in made and len(made) <= MAX_VARIANTS:
                    made[variant] = (*via, rule.name)
    return tuple(
        (variant, via)
        for variant, via in made.items()
        if variant != form and not is_common_word(variant)
    )


def is_common_word(form: str) -> bool:
    """Whether a generated variant would be another, common word (see `COMMON_WORDS`)."""
    return form in COMMON_WORDS or _COMMON_PATTERN.fullmatch(form) is not None
