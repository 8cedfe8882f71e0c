"""What an install holds: one version, and argostranslate without torch, stanza or spaCy."""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from monitor import __version__
from monitor.translate._argos import argos
from monitor.translate._engine import ModelError

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))


def test_the_version_is_written_once_in_the_package() -> None:
    assert "version" not in PYPROJECT["project"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "monitor.__version__"}
    assert importlib.metadata.version("news-monitor") == __version__


def _argos_spec() -> str:
    """The argostranslate requirement `make install` installs with --no-deps."""
    makefile = (ROOT / "Makefile").read_text("utf-8")
    assert "pip install --quiet --no-deps '$(ARGOS)'" in makefile
    (spec,) = re.findall(r"^ARGOS := (.+)$", makefile, re.M)
    return spec


def test_argostranslate_is_installed_without_its_dependencies_everywhere() -> None:
    declared = " ".join(PYPROJECT["project"]["dependencies"])
    assert not re.search(r"\b(argostranslate|torch|stanza|spacy)\b", declared)
    readme = (ROOT / "README.md").read_text("utf-8")
    assert f"/opt/news-monitor/bin/pip install --no-deps '{_argos_spec()}'" in readme


def test_the_package_api_imports_no_torch_stanza_or_spacy(tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from monitor.translate._argos import argos; "
        f"argos(Path({str(tmp_path)!r})).Package; "
        "print(sorted({'torch', 'stanza', 'spacy'} & set(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_an_install_without_argostranslate_says_how_to_add_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "argostranslate.package", raising=False)
    monkeypatch.setitem(sys.modules, "argostranslate", None)  # as if not installed
    with pytest.raises(ModelError) as missing:
        argos(tmp_path)
    assert str(missing.value) == (
        f"argostranslate: not installed; Argos packages need it: pip install --no-deps "
        f"'{_argos_spec()}' (README: Run as a service)"
    )
