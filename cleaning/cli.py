"""The `cleaning` command: thin wrappers over the library, one clean line per error."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleaning.errors import CleaningError
from cleaning.pipeline import InputConfig
from cleaning.runner import RunFailed

app = typer.Typer(
    help="Clean Japanese web text into a pretraining corpus. Example: cleaning run pipelines/ja.yaml "
    "--input 'data/*.jsonl.gz' --output out/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)


def _out() -> Console:
    """stdout console; files and pipes get 110 columns so the summary table is never cut."""
    console = Console()
    return console if console.is_terminal else Console(width=110)


@app.command(epilog="Example: cleaning run pipelines/ja.yaml --input 'crawl/*.jsonl.gz' --output out/ --workers 64")
def run(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML, e.g. pipelines/ja.yaml")],
    input: Annotated[list[str], typer.Option("--input", "-i", help="input files, folders or globs (repeatable)")],
    output: Annotated[Path, typer.Option("--output", "-o", help="output folder (created; resumed if it exists)")],
    workers: Annotated[Optional[int], typer.Option(help="parallel workers (default: all CPUs)")] = None,
    address: Annotated[
        Optional[str], typer.Option(help="join this Ray cluster (default: RAY_ADDRESS or embedded)")
    ] = None,
    ray: Annotated[bool, typer.Option("--ray/--no-ray", help="--no-ray runs in-process, for debugging")] = True,
    force: Annotated[bool, typer.Option("--force/--resume", help="--force redoes every stage from scratch")] = False,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="override a config value: input.shard_mb=4, normalize.unicode_form=NFC"),
    ] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="show progress bars")] = True,
) -> None:
    """Run a pipeline: ingest inputs into shards, then every stage; reruns resume where they stopped."""
    from cleaning.pipeline import load_pipeline
    from cleaning.runner import Runner, RunOptions
    from cleaning.stats import render

    if workers is not None and workers < 1:
        raise CleaningError("--workers must be at least 1")
    spec = load_pipeline(pipeline, set_ or [])
    options = RunOptions(input, output, workers, ray, address, force, progress)
    summary = Runner(spec, options, err).run()
    render(summary, _out())


@app.command(epilog="Example: cleaning stats out/")
def stats(output: Annotated[Path, typer.Argument(help="output folder of a finished run")]) -> None:
    """Print the summary table of a finished run again."""
    from cleaning.stats import load_summary, render

    render(load_summary(output), _out())


@app.command(epilog="Example: cleaning stages")
def stages() -> None:
    """List the built-in stages and their config options (and the `input:` options)."""
    import cleaning.stages  # noqa: F401
    from cleaning.stage import STAGES

    console = _out()
    sections = [("input", InputConfig, "how input files are read and sharded")]
    sections += [
        (name, cls.Config, (cls.__doc__ or "").strip().splitlines()[0]) for name, cls in sorted(STAGES.items())
    ]
    for name, config, doc in sections:
        table = Table(title=f"{name}: {doc}", title_justify="left")
        for col in ("option", "type", "default", "meaning"):
            table.add_column(col)
        for f in dataclasses.fields(config):
            typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            table.add_row(f.name, str(typ), repr(f.default), f.metadata.get("help", ""))
        console.print(table)


rules_app = typer.Typer(help="Inspect and check the rule data of the rules stage.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")


@rules_app.command("explain", epilog="Example: cleaning rules explain crawl.jsonl.gz --id doc-17")
def rules_explain(
    file: Annotated[Path, typer.Argument(help="JSONL(.gz/.zst) or Parquet file of documents")],
    id_: Annotated[Optional[list[str]], typer.Option("--id", help="only these document ids (repeatable)")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many documents")] = 20,
    rules_dir: Annotated[Optional[Path], typer.Option(help="rules folder (default: rules/)")] = None,
    text_field: Annotated[str, typer.Option(help="input field with the text")] = "text",
    normalize: Annotated[bool, typer.Option("--normalize/--raw", help="normalise first, as the pipeline does")] = True,
) -> None:
    """Show a document with removed lines struck through, each with its rule id, and every
    document rule's measured value against its threshold. Site-level repeated lines are counted
    over FILE itself."""
    from cleaning.readers import ReaderConfig
    from cleaning.rules.engine import RulesEngine
    from cleaning.rules.explain import explain, load_docs, site_keys
    from cleaning.rules.ruleset import load_rules

    rules = load_rules(rules_dir or "")
    docs = load_docs(file, ReaderConfig(text_field=text_field), normalize)
    engine = RulesEngine(rules, site_keys(rules, docs))
    explain(engine, docs, id_ or [], limit, _out())


@rules_app.command("check", epilog="Example: cleaning rules check rules/")
def rules_check(
    rules_dir: Annotated[Optional[Path], typer.Argument(help="rules folder (default: rules/)")] = None,
) -> None:
    """Load the rule files and run every rule's examples; exit 1 if any example disagrees."""
    from cleaning.rules.engine import RulesEngine
    from cleaning.rules.examples import fires, iter_examples
    from cleaning.rules.ruleset import load_rules

    rules = load_rules(rules_dir or "")
    engine = RulesEngine(rules)
    examples = list(iter_examples(rules))
    bad = []
    for example in examples:
        fired, measured = fires(rules, engine, example)
        if fired != example.expected:
            bad.append(f"{example.label}: {measured}")
    console = _out()
    for line in bad:
        console.print(f"[red]wrong[/red] {escape(line)}", highlight=False)
    console.print(
        f"{len(rules.line_rules)} line rules, {len(rules.doc_rules)} document rules, "
        f"{len(examples)} examples, {len(bad)} wrong"
    )
    if bad:
        raise typer.Exit(1)


def main() -> None:
    """Entry point: user errors print one line and exit 2; failed runs exit 1; Ctrl-C exits 130."""
    try:
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except RunFailed as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except CleaningError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: finished shards are kept; rerun the same command to resume")
        sys.exit(130)
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(2)
        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(130)
        raise


if __name__ == "__main__":
    main()
