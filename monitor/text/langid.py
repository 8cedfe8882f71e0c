"""Language identification: langdetect's algorithm and its 55 profiles, plus Kurdish profiles.

langdetect has no Kurdish: alone, it reads Sorani as Persian and Kurmanji as Turkish. The
project ships profiles in langdetect's own format, built by `scripts/build_profiles.py`:
`ckb` (Sorani), `kmr` (Kurmanji, Latin script) and `kmr-Arab` (Kurmanji in Arabic script, as
Duhok media write it). All of them are loaded into ONE factory at once, because langdetect
sizes its per-n-gram arrays by the profile count at load time. langdetect-rs runs it: the
same results as langdetect, bit for bit, many times faster.

What langdetect cannot know is added as script evidence, applied through its prior (so the
n-gram statistics still decide among the languages that remain):

* Letters only Kurdish writes in the Arabic script (ە ێ ۆ ڕ ڵ), in a share that a quoted
  Kurdish name does not reach, leave only Sorani and Badini as candidates, so Kurdish is
  never called Persian or Arabic; and the spellings that vary between Kurdish keyboards
  (ى ي ك ھ, heh + ZWNJ for ە) are folded as the profiles were.
* Badini and Sorani share the alphabet; Badini is only reported when a Kurmanji function word
  (standalone ل ب د ژ, کو, دێ, ژی, ئەڤ …) or a Kurmanji feed hint backs the n-grams, since
  ANF-style Sorani has many Kurmanji-like n-grams but none of these words.
* A feed's `language:` hint is a prior weight, not an override. Text too short to carry
  evidence (under ten letters, no Kurdish letters) gets the prior itself: the hint, else `und`.
  Mixed text (two scripts, or no language winning a third of langdetect's trials) is `und`.

Determinism: the factory is seeded, so the same text always gets the same answer.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "KURDISH_PROFILES",
    "UNDETERMINED",
    "LanguageGuess",
    "LanguageIdentifier",
    "fold_kurdish_arabic",
]

UNDETERMINED = "und"
KURDISH_PROFILES = ("ckb", "kmr", "kmr-Arab")
"""Profiles shipped in monitor/text/data/; the names are the BCP 47 codes reported."""
SORANI, BADINI = "ckb", "kmr-Arab"

_MIN_LETTERS = 10
"""Fewer letters give langdetect too few n-grams (a lone `Mosul` comes out Romanian, at 1.0):
such text carries no evidence, so the answer is the prior: the feed's hint, else `und`."""
_SHORT_LETTERS = 150
_SHORT_TRIALS = 31
"""A headline gives langdetect few n-grams, and its default seven random trials can split three
ways (`Suicide bomber killed in Khanaqin`: en, af, kmr); 31 trials make the answer stable."""
_MIN_CONFIDENCE = 0.34
"""Below this, no language won a third of langdetect's trials: the text is mixed, `und`."""
_MIXED_SHARE = 0.3
"""Text with more than this share of its letters in the Arabic script and more in another is
in two scripts, so in two languages: `und`."""
_HINT_WEIGHT = 0.7
"""Prior probability given to a feed's `language:` hint; detection can still overrule it."""
_HINT_ALIASES = {"kmr": ("kmr", BADINI), "ku": ("ckb", "kmr", BADINI)}
"""A Kurmanji feed may write either script; `ku` (either Kurdish) is accepted as a hint."""
# Letters are counted as what is left when everything else is removed: one string made in C,
# where `findall` made a list of one-character strings (a third of the counting's time).
_NOT_LETTER = re.compile(r"[\W\d_]+")
_NOT_KURDISH_LETTER = re.compile("[^ەێۆڕڵ]+")
_NOT_ARABIC_SCRIPT_LETTER = re.compile("[^\u0620-\u064a\u066e-\u06d3\u06d5\u06fa-\u06ff]+")
_KURDISH_SHARE = 50
"""Kurdish letters are one in fifty of a text's Arabic-script letters or more: they are 3 % or
more of every Sorani and Badini sample line that has one, while a Kurdish name quoted in an
Arabic or Persian article is far less."""
_KURDISH_FOLD = str.maketrans({"ى": "ی", "ي": "ی", "ك": "ک", "ھ": "ه"})
_HEH_ZWNJ = re.compile("ه\u200c")
_ARABIC_WORD = re.compile("[\u0600-\u06ff]+")
_BADINI_WORDS = frozenset({
    "ل", "ب", "د", "ژ", "کو", "دێ", "ژی", "یێ", "یێن", "ئەڤ", "ئەڤرۆ", "ئەڤە", "گەلەک", "ڤێ",
    "ڤی", "ڤان", "ڤە", "خوە", "دکەت", "دبێژیت", "دبێژن", "هاتە", "کرن", "دناڤ", "هندەک", "ئێک",
    "دگەل", "هەمی", "گۆت",
})  # fmt: skip
"""Kurmanji function words and verb forms; Sorani writes لە بە لەگەڵ کە دەڵێت instead."""
_BADINI_HINTS = frozenset({"kmr", BADINI})
"""A Kurmanji feed's word is evidence enough for Badini when the n-grams say so too."""


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    language: str
    confidence: float


def fold_kurdish_arabic(text: str) -> str:
    """Kurdish in the Arabic script, one spelling per letter (profiles are built on it too).

    Arabic-keyboard yeh and kaf and the heh doachashmee become the Kurdish letters, and the
    older `heh + ZWNJ` spelling of ە becomes ە.
    """
    return _HEH_ZWNJ.sub("ە", text).translate(_KURDISH_FOLD)


def _builtin_profiles() -> Path:
    # Found, not imported: importing langdetect costs every command 30 ms for a directory name.
    spec = importlib.util.find_spec("langdetect")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("langdetect is not installed (its profiles are needed)")
    return Path(spec.origin).parent / "profiles"


def _profile_texts() -> tuple[str, ...]:
    """langdetect's built-in profiles in name order, then the Kurdish ones: fixed indices.

    Read for each identifier, not kept: 3 MB of JSON that the factory has made its own, and a
    process builds one identifier (a reload reuses it)."""
    builtin = sorted(_builtin_profiles().iterdir())
    data = resources.files("monitor.text") / "data"
    kurdish = [(data / f"{name}.json").read_text(encoding="utf-8") for name in KURDISH_PROFILES]
    return (*(path.read_text(encoding="utf-8") for path in builtin), *kurdish)


def _has_badini_words(text: str) -> bool:
    return not _BADINI_WORDS.isdisjoint(_ARABIC_WORD.findall(text))


class LanguageIdentifier:
    def __init__(self, seed: int = 0) -> None:
        # Loaded with the first identifier, not with the module: the translator imports this
        # module for UNDETERMINED at every start (issue 14).
        from langdetect_rs import DetectorFactory

        self._factory = DetectorFactory()
        self._factory.load_json_profile(list(_profile_texts()))
        self._factory.set_seed(seed)
        self._languages = frozenset(str(lang) for lang in self._factory.get_lang_list())

    @property
    def languages(self) -> frozenset[str]:
        return self._languages

    def _prior(self, hint: str | None, kurdish_script: bool) -> dict[str, float] | None:
        """Prior weights: the hint (or its aliases) shares `_HINT_WEIGHT`, the other candidates
        the rest; Kurdish letters leave only Sorani and Badini as candidates."""
        candidates = frozenset((SORANI, BADINI)) if kurdish_script else self._languages
        hinted = candidates.intersection(_HINT_ALIASES.get(hint or "", (hint,)))
        if not hinted or hinted == candidates:
            return dict.fromkeys(candidates, 1.0) if kurdish_script else None
        hinted_weight = _HINT_WEIGHT / len(hinted)
        other_weight = (1 - _HINT_WEIGHT) / (len(candidates) - len(hinted))
        return {lang: hinted_weight if lang in hinted else other_weight for lang in candidates}

    def identify(self, text: str, hint: str | None = None) -> LanguageGuess:
        letters = len(_NOT_LETTER.sub("", text))
        arabic_script = len(_NOT_ARABIC_SCRIPT_LETTER.sub("", text))
        kurdish = len(_NOT_KURDISH_LETTER.sub("", text))
        kurdish_script = kurdish > 0 and kurdish * _KURDISH_SHARE >= arabic_script
        if letters < _MIN_LETTERS and not kurdish_script:
            if hint in self._languages:
                return LanguageGuess(hint, _HINT_WEIGHT)
            return LanguageGuess(UNDETERMINED, 0.0)
        if min(arabic_script, letters - arabic_script) > _MIXED_SHARE * letters:
            return LanguageGuess(UNDETERMINED, 0.0)
        if kurdish_script:
            text = fold_kurdish_arabic(text)
        detector = self._factory.create()
        if letters < _SHORT_LETTERS:
            detector.n_trial = _SHORT_TRIALS
        prior = self._prior(hint, kurdish_script)
        if prior is not None:
            detector.set_prior_map(prior)
        detector.append(text)
        from langdetect_rs import LangDetectException

        try:
            best = detector.get_probabilities()[0]
        except (LangDetectException, IndexError):
            return LanguageGuess(UNDETERMINED, 0.0)
        language, confidence = str(best.lang), float(best.prob)
        if confidence < _MIN_CONFIDENCE:
            return LanguageGuess(UNDETERMINED, 0.0)
        if language == BADINI and hint not in _BADINI_HINTS and not _has_badini_words(text):
            language = SORANI
        return LanguageGuess(language, round(confidence, 4))
