"""`terms WORD`: every form a watchlist term expands to, and why (issue 16)."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from monitor.cli.common import echo_json

if TYPE_CHECKING:
    from monitor.match import TermForms


@click.command()
@click.argument("word")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def terms(word: str, as_json: bool) -> None:
    """Every form WORD expands to, per language and script, with its source.

    For each spelling in the built-in gazetteer: how it is compared (folded), the text folds
    that change it, the spelling variants generated from it (and the rule that made each),
    and the clitics and endings it takes. This is what a watchlist term WORD matches; a word
    in no gazetteer entry matches as written. Reads no config file and needs no secrets.

    Example: news-monitor terms Kirkuk
    """
    from monitor.match import describe_term

    found = describe_term(word)
    if as_json:
        echo_json(asdict(found))
        return
    click.echo(render(found))


def render(found: TermForms) -> str:
    if found.entry is None:
        lines = [f"{found.word}: in no gazetteer entry; a term {found.word!r} matches as written"]
    else:
        lines = [f"{found.word}: gazetteer entry {found.entry} ({found.kind})"]
        lines.append(f"source: {found.source}")
    for form in found.forms:
        language = form.language or "as written"
        folds = f"; folds: {', '.join(form.folds)}" if form.folds else ""
        lines.append(f"{language:<10} {form.spelling}  (matched as {form.matched_as}{folds})")
        if form.variants:
            variants = ", ".join(f"{v} ({'+'.join(rules)})" for v, rules in form.variants)
            lines.append(f"{'':<10} variants: {variants}")
        lines.append(f"{'':<10} {form.affixes}")
    return "\n".join(lines)
