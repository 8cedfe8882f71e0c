"""`news-monitor terms WORD`: the forms a term expands to, without a config file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from monitor.cli import cli
from monitor.match import describe_term
from monitor.text.gazetteer import parse_gazetteer

KIRKUK = {
    "id": "kirkuk",
    "kind": "governorate",
    "en": ["Kirkuk"],
    "ar": ["كركوك"],
    "ckb": ["کەرکووک"],
    "kmr": ["Kerkûk"],
    "source": "test",
}
GAZETTEER = parse_gazetteer({"entries": [KIRKUK]})


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    missing = tmp_path / "no-config.yaml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "terms", *args], obj={})
    return result.exit_code, result.output


def test_terms_needs_no_config_file(tmp_path: Path) -> None:
    code, output = run(tmp_path, "Kirkuk")
    assert code == 0, output
    assert output.startswith("Kirkuk: gazetteer entry kirkuk (governorate)\nsource: ")
    assert "كركوك" in output and "Kerkûk" in output


def test_terms_json_lists_every_spelling_with_its_language(tmp_path: Path) -> None:
    code, output = run(tmp_path, "kirkuk", "--json")
    assert code == 0, output
    found = json.loads(output)
    assert found["entry"] == "kirkuk"
    languages = {form["language"] for form in found["forms"]}
    assert {"en", "ar", "ckb", "kmr"} <= languages


def test_a_word_in_no_entry_matches_as_written(tmp_path: Path) -> None:
    code, output = run(tmp_path, "Atlantis", "--json")
    assert code == 0, output
    found = json.loads(output)
    assert found["entry"] is None
    assert [form["matched_as"] for form in found["forms"]] == ["atlantis"]


def test_describe_term_shows_folds_variants_and_endings() -> None:
    found = describe_term("Kirkuk", GAZETTEER)
    forms = {form.language: form for form in found.forms}
    assert forms["ckb"].folds == ("heh-ae",)
    assert forms["ckb"].variants == (("کهرکوک", ("waw",)),)
    assert "ژ" in forms["ckb"].affixes and "no Arabic plural" in forms["ckb"].affixes
    assert forms["ar"].folds == ("arabic-kaf",)
    assert forms["kmr"].folds == ("latin-diacritics",)
    assert forms["kmr"].affixes.startswith("endings (one): -s -es -e")
    assert ("kirkouk", ("u-o",)) in forms["en"].variants
