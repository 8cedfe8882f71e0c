"""The `models` commands: which model translates each language, and installing more."""

from __future__ import annotations

from pathlib import Path

import click

from monitor.cli.common import UsageFailure, echo_json, load

__all__ = ["models"]


@click.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """Translation models: what translates each language (default), and installing more.

    Models live under STATE_DIR/models. A running daemon picks up a new model on reload
    (SIGHUP, or `systemctl reload news-monitor`).

    Example: news-monitor models
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


@models.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per language.")
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """For each language: the engine and model that will translate it, or "untranslated".

    Languages listed: Arabic, Sorani and Kurmanji, each feed's `language:`, and every
    language an installed model translates. Models that cannot be used are listed as errors.

    Example: news-monitor models list --json
    """
    from monitor.translate import Translator

    config = load(ctx)
    translator = Translator.from_config(config)
    settings = config.translation
    for language, choice in translator.plan().items():
        if as_json:
            echo_json(
                {
                    "language": language,
                    "engine": choice.engine if choice else None,
                    "model": choice.model if choice else None,
                    "path": str(choice.path) if choice else None,
                }
            )
        elif choice is None:
            click.echo(f"{language:<6} untranslated")
        else:
            click.echo(f"{language:<6} {choice.engine:<7} {choice.model}  ({choice.path})")
    for problem in translator.problems:
        click.echo(f"error: {problem}", err=True)
    if settings.mode == "off" and not as_json:
        click.echo("note: translation.mode is off: nothing is translated", err=True)


@models.command("install")
@click.argument("file", required=False, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--from-index",
    nargs=2,
    metavar="SRC TGT",
    help="Download the newest Argos SRC→TGT package from the Argos index (needs a network).",
)
@click.pass_context
def install_model(ctx: click.Context, file: Path | None, from_index: tuple[str, str]) -> None:
    """Install an .argosmodel, a CTranslate2 model directory, or a .zip/.tar.gz of one.

    FILE needs no network. NLLB-200 and MADLAD-400 models are CTranslate2 directories made
    with ct2-transformers-converter (see README, "Translation"). The model is loaded once
    to check it; a model of the same name (or an Argos package for the same pair) is replaced.

    Example: news-monitor models install translate-ar_en-1_9.argosmodel
    """
    from monitor.translate import ModelError, install, install_from_index

    if (file is None) == (not from_index):
        raise UsageFailure("give either FILE or --from-index SRC TGT")
    config = load(ctx)
    try:
        if file is not None:
            installed = install(file, config)
        else:
            installed = install_from_index(from_index[0], from_index[1], config)
    except ModelError as exc:
        raise click.ClickException(str(exc)) from None
    languages = ", ".join(installed.languages)
    click.echo(f"installed {installed.engine} model {installed.model} for {languages}")
    click.echo(f"  at {installed.path}")
    click.echo("  a running daemon uses it after a reload: systemctl reload news-monitor")
