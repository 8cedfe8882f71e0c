"""Local translation to English: Argos packages and NLLB-200 / MADLAD-400 CTranslate2 models.

Offline by construction: models are files under `<state_dir>/models`, sentences are split by
the package's own MiniSBD model or by punctuation, and nothing here opens a socket except
`install_from_index`, which the `models install --from-index` command calls on purpose.

    translator = Translator.from_config(config)        # scans models; loads none
    translator.plan()                                  # language -> EngineChoice | None
    translator.translate_items([(title, summary, "ar")], cache=store)

The daemon uses `TranslationWorker`: a bounded queue, drained on a thread of its own.
"""

from __future__ import annotations

from monitor.translate._engine import Engine, ModelError
from monitor.translate._models import InstalledModel, install, install_from_index
from monitor.translate._translator import (
    EngineChoice,
    Translation,
    TranslationCache,
    Translator,
)
from monitor.translate._worker import TranslationJob, TranslationWorker

__all__ = [
    "Engine",
    "EngineChoice",
    "InstalledModel",
    "ModelError",
    "Translation",
    "TranslationCache",
    "TranslationJob",
    "TranslationWorker",
    "Translator",
    "install",
    "install_from_index",
]
