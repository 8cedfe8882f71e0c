"""Multilingual CTranslate2 models: NLLB-200 style and MADLAD-400 style.

Both are seq2seq models converted with `ct2-transformers-converter`, with their SentencePiece
model copied into the directory. They differ in how the languages are named:

- NLLB-200: the source sentence starts with its FLORES-200 code (`ckb_Arab`) and ends with
  `</s>`; the target code (`eng_Latn`) is forced as the first target token and stripped.
- MADLAD-400: the source starts with the target tag (`<2en>`); the source language is not
  named at all.

The style is told from the vocabulary: NLLB's holds `eng_Latn`, MADLAD's holds `<2en>`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.config import TranslationConfig, TranslationEngine
from monitor.translate._engine import Ct2Engine, ModelError, fingerprint

__all__ = ["MultilingualEngine"]

NLLB_CODES = {
    "ar": "arb_Arab",
    "ckb": "ckb_Arab",
    "kmr": "kmr_Latn",
    "fa": "pes_Arab",
    "tr": "tur_Latn",
    "en": "eng_Latn",
    "he": "heb_Hebr",
    "ur": "urd_Arab",
    "ru": "rus_Cyrl",
    "uk": "ukr_Cyrl",
    "fr": "fra_Latn",
    "de": "deu_Latn",
    "es": "spa_Latn",
    "it": "ita_Latn",
    "pt": "por_Latn",
    "nl": "nld_Latn",
    "sv": "swe_Latn",
    "pl": "pol_Latn",
    "ro": "ron_Latn",
    "el": "ell_Grek",
    "hi": "hin_Deva",
    "bn": "ben_Beng",
    "id": "ind_Latn",
    "vi": "vie_Latn",
    "th": "tha_Thai",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "so": "som_Latn",
    "sw": "swh_Latn",
    "zh-cn": "zho_Hans",
    "zh-tw": "zho_Hant",
}
"""The project's language codes (langdetect's, plus ckb and kmr) → FLORES-200 codes."""

_MADLAD_DIFFERENT = {"kmr": "ku", "zh-cn": "zh", "zh-tw": "zh_Hant"}


def madlad_code(language: str) -> str:
    return _MADLAD_DIFFERENT.get(language, language)


_TOKENIZER_FILES = ("sentencepiece.bpe.model", "spiece.model", "sentencepiece.model")
"""NLLB's file, MADLAD's (T5's) file, and Argos's name for it."""
_VOCABULARY_FILES = (
    "shared_vocabulary.json",
    "source_vocabulary.json",
    "target_vocabulary.json",
    "shared_vocabulary.txt",
    "source_vocabulary.txt",
    "target_vocabulary.txt",
)


def _vocabulary(directory: Path) -> set[str]:
    tokens: set[str] = set()
    for name in _VOCABULARY_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
            tokens.update(json.loads(text) if name.endswith(".json") else text.splitlines())
        except (OSError, ValueError) as exc:
            raise ModelError(path, f"unreadable vocabulary: {exc}") from exc
    return tokens


class MultilingualEngine(Ct2Engine):
    """An NLLB-200 or MADLAD-400 style model directory."""

    def __init__(
        self,
        path: Path,
        kind: TranslationEngine,
        tokenizer: Path,
        languages: frozenset[str],
        target: str,
        settings: TranslationConfig,
    ) -> None:
        version = fingerprint(path / "model.bin")
        super().__init__(path, path, languages, version, settings)
        self.kind = kind
        self._tokenizer_file = tokenizer
        self._target = target
        self._sp: Any = None

    @classmethod
    def open(cls, path: Path, target: str, settings: TranslationConfig) -> MultilingualEngine:
        """Tell the style from the vocabulary and check the files; loads no weights.

        Raises:
            ModelError: naming the missing file, or saying the style is unknown.
        """
        for name in ("model.bin", "config.json"):
            if not (path / name).is_file():
                raise ModelError(path / name, "missing: not a CTranslate2 model directory")
        tokenizer = next((path / n for n in _TOKENIZER_FILES if (path / n).is_file()), None)
        if tokenizer is None:
            reason = f"missing: the directory holds no SentencePiece model ({_TOKENIZER_FILES})"
            raise ModelError(path / _TOKENIZER_FILES[0], reason)
        vocabulary = _vocabulary(path)
        if not vocabulary:
            raise ModelError(path / _VOCABULARY_FILES[0], "missing: the model has no vocabulary")
        kind: TranslationEngine
        if "eng_Latn" in vocabulary:
            kind = "nllb"
            codes = dict(NLLB_CODES)
            target_token = NLLB_CODES.get(target)
        elif "<2en>" in vocabulary:
            kind = "madlad"
            codes = {lang: f"<2{madlad_code(lang)}>" for lang in NLLB_CODES}
            target_token = f"<2{madlad_code(target)}>"
        else:
            reason = "not an NLLB-200 or MADLAD-400 style model: no eng_Latn or <2en> token"
            raise ModelError(path / "config.json", reason)
        languages: frozenset[str] = frozenset()
        if target_token in vocabulary:
            languages = frozenset(
                lang for lang, code in codes.items() if code in vocabulary and lang != target
            )
        return cls(path, kind, tokenizer, languages, target, settings)

    def _load_tokenizer(self) -> None:
        if self._sp is not None:
            return
        import sentencepiece

        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_file=str(self._tokenizer_file))
        except (OSError, RuntimeError) as exc:
            reason = f"cannot load the SentencePiece model: {exc}"
            raise ModelError(self._tokenizer_file, reason) from exc

    def _source(self, sentence: str, language: str) -> list[str]:
        pieces: list[str] = self._sp.encode(sentence, out_type=str)
        if self.kind == "nllb":
            return [NLLB_CODES[language], *pieces, "</s>"]
        return [f"<2{madlad_code(self._target)}>", *pieces, "</s>"]

    def _target_prefix(self) -> list[str]:
        return [NLLB_CODES[self._target]] if self.kind == "nllb" else []

    def _decode(self, tokens: list[str]) -> str:
        prefix = self._target_prefix()
        if prefix and tokens[:1] == prefix:
            tokens = tokens[1:]
        return str(self._sp.decode_pieces(tokens)).strip()
