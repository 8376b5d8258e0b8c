"""The `cleaning` command: thin wrappers over the library, one clean line per error."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleaning.errors import CleaningError, os_error_line
from cleaning.pipeline import InputConfig, WorkConfig
from cleaning.runner import RunFailed

app = typer.Typer(
    help="Clean Japanese web text into a pretraining corpus. Example: cleaning run pipelines/ja.yaml "
    "--input 'data/*.jsonl.gz' --output out/",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)  # a log file gets one line per message, never wrapped at 80


def _version(value: bool) -> None:
    if value:
        from cleaning import __version__

        typer.echo(f"cleaning {__version__}")
        raise typer.Exit()


@app.callback()
def _main_options(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = None,
) -> None:
    """Clean Japanese web text into a pretraining corpus."""


def _out() -> Console:
    """stdout console; files and pipes get 110 columns so the summary table is never cut."""
    console = Console()
    return console if console.is_terminal else Console(width=110)


@app.command(epilog="Example: cleaning run pipelines/ja.yaml --input 'crawl/*.jsonl.gz' --output out/ --workers 64")
def run(
    pipeline: Annotated[Path, typer.Argument(help="pipeline YAML, e.g. pipelines/ja.yaml")],
    input: Annotated[
        list[str], typer.Option("--input", "-i", help="input files, folders, globs or s3:// URLs (repeatable)")
    ],
    output: Annotated[
        str, typer.Option("--output", "-o", help="output folder or s3:// URL (created; resumed if it exists)")
    ],
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
    log_every: Annotated[
        float, typer.Option(help="seconds between progress lines in a log (stderr not a terminal) and in long steps")
    ] = 30.0,
    work: Annotated[
        Optional[Path],
        typer.Option(help="with an s3:// output: this machine's copy of the run (default: under $CLEANING_WORK)"),
    ] = None,
) -> None:
    """Run a pipeline: ingest inputs into shards, then every stage; reruns resume where they stopped."""
    from cleaning.pipeline import load_pipeline
    from cleaning.runner import Runner, RunOptions
    from cleaning.stats import render

    if workers is not None and workers < 1:
        raise CleaningError("--workers must be at least 1")
    if not log_every > 0:
        raise CleaningError("--log-every must be a number of seconds above 0")
    spec = load_pipeline(pipeline, set_ or [])
    options = RunOptions(input, output, workers, ray, address, force, progress, log_every, work)
    summary = Runner(spec, options, err).run()
    render(summary, _out())


@app.command(epilog="Example: cleaning stats out/")
def stats(output: Annotated[str, typer.Argument(help="output folder or s3:// URL of a finished run")]) -> None:
    """Print the summary table of a finished run again."""
    from cleaning.stats import load_summary, render

    render(load_summary(output), _out())


@app.command(epilog="Example: cleaning report out/ --weights pipelines/weights.yaml")
def report(
    output: Annotated[str, typer.Argument(help="output folder or s3:// URL of a finished run with a genres stage")],
    weights: Annotated[
        Optional[Path], typer.Option(help="weights YAML to preview (default: the run's balance stage weights)")
    ] = None,
    dest: Annotated[Optional[Path], typer.Option(help="where to write the report (default: OUTPUT/report)")] = None,
    workers: Annotated[Optional[int], typer.Option(help="parallel workers (default: all CPUs)")] = None,
    ray: Annotated[bool, typer.Option("--ray/--no-ray", help="--no-ray summarises in-process")] = True,
    address: Annotated[Optional[str], typer.Option(help="join this Ray cluster")] = None,
    work: Annotated[Optional[Path], typer.Option(help="with an s3:// run: this machine's copy of it")] = None,
) -> None:
    """Write the genre balance report: index.html (self-contained), clusters.csv/.parquet, domains.csv."""
    from cleaning.executor import make_executor
    from cleaning.report.build import ReportOptions, build_report

    folder, store = _readable(output, work)
    options = ReportOptions(folder, dest, weights)
    executors = []  # started on first use: an up-to-date report needs no Ray

    def mapper(fn, items, label=""):  # type: ignore[no-untyped-def]
        if not executors:
            executors.append(make_executor(ray, workers, address))
        return executors[0].map(fn, items, label)

    try:
        overview = build_report(options, mapper, log=lambda line: err.print(f"report: {escape(line)}"))
    finally:
        for executor in executors:
            executor.close()
    files = overview["files"]
    if store is not None and dest is None:  # the report goes beside the run, in the store too
        store.push(sorted(p for p in (folder / "report").rglob("*") if p.is_file()))
    made = "unchanged" if overview.get("up_to_date") else f"{overview['seconds']:.1f} s"
    _out().print(
        f"report: {files['html']} ({files['html_bytes'] / 1e6:.1f} MB, {overview['k']:,} clusters, "
        f"{made}); table: {files['clusters']}"
    )


@app.command("eval", epilog="Example: cleaning eval out/ ../shared/data/gold/labels --show 'CC-MAIN-…#123'")
def eval_(
    output: Annotated[str, typer.Argument(help="output folder or s3:// URL of a finished run")],
    labels: Annotated[list[Path], typer.Argument(help="line-labelled page files or folders (JSONL)")],
    dest: Annotated[
        Optional[Path], typer.Option(help="where eval.json and eval.html go (default: OUTPUT/eval)")
    ] = None,
    show: Annotated[
        Optional[list[str]], typer.Option(help="print these pages line by line, coloured by label (repeatable)")
    ] = None,
    top: Annotated[int, typer.Option(help="rows in the 'lost content' and 'surviving boilerplate' tables")] = 15,
    work: Annotated[Optional[Path], typer.Option(help="with an s3:// run: this machine's copy of it")] = None,
    against: Annotated[
        Optional[Path],
        typer.Option(help="another finished run (before a change): each figure's difference, paired over pages"),
    ] = None,
) -> None:
    """Score a run against line-labelled pages: purity, content recall, page precision and recall,
    boilerplate left, each with a 95% interval over the pages; which rules removed content, which
    boilerplate survived, every page line by line. With --against, whether the run is clearly better or
    worse than another on each figure."""
    from cleaning.evaluation.evaluate import evaluate, write_outputs
    from cleaning.evaluation.intervals import compare, flips, intervals
    from cleaning.evaluation.views import render_comparison, render_findings, render_page, render_scores

    folder, _ = _readable(output, work)
    result = evaluate(folder, labels)
    by_id = {r.page.id: r for r in result.results}
    missing = [page_id for page_id in show or [] if page_id not in by_id]
    if missing:
        raise CleaningError(f"page {missing[0]!r} is not among the scored pages")
    spans = intervals(result.results)
    extra: dict[str, Any] = {"intervals_95": {k: [round(lo, 4), round(hi, 4)] for k, (lo, hi) in spans.items()}}
    diffs, common = [], 0
    if against is not None:
        before = evaluate(against, labels)
        diffs, common = compare(result.results, before.results)
        if not common:
            raise CleaningError(f"no labelled page was scored by both {folder} and {against}")
        changed = flips(result.results, before.results)
        extra["against"] = {
            "run": str(against),
            "pages": common,
            "figures": {d.figure: d.as_dict() for d in diffs},
            "changed_fate": changed,
        }
    files = write_outputs(result, dest or folder / "eval", extra)  # first: the files exist even if stdout closes
    console = _out()
    for line in result.warnings:
        err.print(f"[yellow]warning[/yellow] {escape(line)}", highlight=False)
    render_scores(result.scores, console, intervals=spans)
    if against is not None:
        render_comparison(diffs, common, str(against), console, extra["against"]["changed_fate"])
    render_findings(result.results, console, top)
    for page_id in show or []:
        render_page(by_id[page_id], console)
    console.print(f"pages line by line: {files['html']}; figures: {files['json']}")


def _readable(output: str, work: Path | None) -> tuple[Path, Any]:
    """A run folder to read; a run in object storage is read through this machine's copy."""
    from cleaning.runstore import readable_copy

    folder, store = readable_copy(output, work)
    if store is not None:
        err.print(f"reading {store.url} through its copy in {folder}", highlight=False)
    return folder, store


@app.command(epilog="Example: cleaning stages")
def stages() -> None:
    """List the built-in stages and their config options (and the `input:` and `work:` options)."""
    import cleaning.stages  # noqa: F401
    from cleaning.stage import STAGES

    console = _out()
    sections = [("input", InputConfig, "how input files are read and sharded")]
    sections.append(("work", WorkConfig, "what happens to a stage's shards once the next stage has read them"))
    sections += [
        (name, cls.Config, (cls.__doc__ or "").strip().splitlines()[0]) for name, cls in sorted(STAGES.items())
    ]
    for name, config, doc in sections:
        table = Table(title=f"{name}: {doc}", title_justify="left")
        for col in ("option", "type", "default", "meaning"):
            table.add_column(col)
        for f in dataclasses.fields(config):
            typ = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            table.add_row(f.name, str(typ), repr(default), f.metadata.get("help", ""))
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
    from cleaning.rules.explain import explain, line_stats, load_docs
    from cleaning.rules.ruleset import load_rules

    rules = load_rules(rules_dir or "")
    docs = load_docs(file, ReaderConfig(text_field=text_field), normalize)
    engine = RulesEngine(rules, line_stats(rules, docs))
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


@rules_app.command("train", epilog="Example: cleaning rules train annotations/pages --run out/crawl")
def rules_train(
    labels: Annotated[list[Path], typer.Argument(help="line-labelled page files or folders (JSONL)")],
    run: Annotated[Path, typer.Option(help="a run over the corpus the labelled pages come from")],
    rules_dir: Annotated[Optional[Path], typer.Option(help="rules folder to write the models into")] = None,
    folds: Annotated[int, typer.Option(help="cross-validation folds (pages grouped by site)")] = 5,
    workers: Annotated[Optional[int], typer.Option(help="parallel workers for the corpus line count")] = None,
    ray: Annotated[bool, typer.Option("--ray/--no-ray", help="--no-ray counts in-process")] = True,
    test: Annotated[
        Optional[list[Path]], typer.Option(help="held-out labelled pages: scored by the new models, never trained on")
    ] = None,
) -> None:
    """Train the line and page models of the rules stage; prints the cross-validated figures (and the
    held-out ones with --test)."""
    from cleaning.evaluation.train import train_models
    from cleaning.executor import make_executor
    from cleaning.rules.ruleset import DEFAULT_RULES_DIR

    if folds < 2:
        raise CleaningError("--folds must be at least 2")
    executor = make_executor(ray, workers, None)
    try:
        cv = train_models(
            run, labels, rules_dir or DEFAULT_RULES_DIR, folds, map_fn=executor.map,
            log=lambda line: err.print(f"train: {escape(line)}"), test_paths=test,
        )  # fmt: skip
    finally:
        executor.close()
    console = _out()
    table = Table(
        title=f"cross-validated ({folds} folds by site); line AUC {cv['line_auc']}, page AUC {cv['page_auc']}"
    )
    for col in ("thresholds", "purity", "content recall", "page precision", "page recall", "B lines mean"):
        table.add_column(col)
    for name, f in cv["at_thresholds"].items():
        mark = " (rules/)" if name == cv["chosen"] else ""
        table.add_row(
            name + mark, *(f"{f[k]:.3f}" for k in ("purity", "content_recall", "page_precision", "page_recall")),
            f"{f['boilerplate_lines_mean']:.2f}",
        )  # fmt: skip
    console.print(table)
    if "held_out" in cv:
        f = cv["held_out"]
        console.print(
            f"held-out ({f['pages']} pages, rules stage alone, {cv['chosen']}): purity {f['purity']:.3f}, "
            f"content recall {f['content_recall']:.3f}, page precision {f['page_precision']:.3f}, "
            f"page recall {f['page_recall']:.3f}, B lines mean {f['boilerplate_lines_mean']:.2f}"
        )
    console.print(f"models written next to {(rules_dir or DEFAULT_RULES_DIR) / 'lines.yaml'} in {cv['seconds']} s")


annotations_app = typer.Typer(help="Check annotation files and draw documents to annotate next.", no_args_is_help=True)
app.add_typer(annotations_app, name="annotations")
quality_app = typer.Typer(help="Train the fastText good/noise quality classifier.", no_args_is_help=True)
app.add_typer(quality_app, name="quality")


@annotations_app.command("check", epilog="Example: cleaning annotations check annotations/")
def annotations_check(
    paths: Annotated[
        Optional[list[Path]], typer.Argument(help="JSONL files or folders (default: annotations/)")
    ] = None,
) -> None:
    """Validate annotation files: text annotations (schema, labels, duplicates, conflicting labels,
    balance) and line-labelled pages (one C/B/N label per line, a KEEP/DROP/BORDER verdict)."""
    from cleaning.pagelabels import check_pages
    from cleaning.quality.annotations import check_annotations

    targets = paths or [Path("annotations")]
    report = check_annotations(targets)
    pages = check_pages(targets)
    console = _out()
    for line in report.errors + pages.errors:
        console.print(f"[red]error[/red] {escape(line)}", highlight=False)
    for line in report.warnings + pages.warnings[:10]:
        console.print(f"[yellow]warning[/yellow] {escape(line)}", highlight=False)
    if len(pages.warnings) > 10:
        console.print(f"[yellow]warning[/yellow] … and {len(pages.warnings) - 10} more about pages")
    counts, verdicts = report.counts(), pages.counts()
    errors = len(report.errors) + len(pages.errors)
    console.print(
        f"{len(report.files)} files, {len(report.annotations)} valid annotations "
        f"(good {counts.get('good', 0)}, noise {counts.get('noise', 0)}), "
        f"{len(pages.pages)} labelled pages (KEEP {verdicts.get('KEEP', 0)}, DROP {verdicts.get('DROP', 0)}, "
        f"BORDER {verdicts.get('BORDER', 0)}), {errors} errors, {len(report.warnings) + len(pages.warnings)} warnings"
    )
    if errors:
        raise typer.Exit(1)


@annotations_app.command(
    "agree",
    epilog="Example: cleaning annotations agree annotations/heldout annotations/second-reading --run out/crawl",
)
def annotations_agree(
    first: Annotated[Path, typer.Argument(help="the reference labelling: page label file or folder (JSONL)")],
    second: Annotated[Path, typer.Argument(help="another labelling of (some of) the same pages")],
    run: Annotated[
        Optional[Path], typer.Option(help="a finished run that read the pages (for records without text)")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="also write the comparison as JSON here")] = None,
) -> None:
    """How far two labellings of the same pages agree: verdicts and line labels side by side, Cohen's
    kappa, and the five figures the second scores as a cleaner against the first - the most any cleaner
    can be expected to score against these labels."""
    from cleaning.evaluation.agreement import compare_labellings
    from cleaning.evaluation.views import render_agreement

    result = compare_labellings([first], [second], run)
    if not result.pages:
        raise CleaningError(f"no page is labelled in both {first} and {second}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.as_dict(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    render_agreement(result, str(first), str(second), _out())


@annotations_app.command(
    "sample",
    epilog="Example: cleaning annotations sample out/ --n 200 --out annotations/todo.jsonl",
)
def annotations_sample(
    corpus: Annotated[
        list[Path], typer.Argument(help="a run's output folder (its model and threshold are used), or JSONL/Parquet")
    ],
    out: Annotated[Path, typer.Option(help="where to write the excerpts to label (label left empty)")],
    n: Annotated[int, typer.Option(help="how many excerpts (one per document)")] = 200,
    strategy: Annotated[str, typer.Option(help="uncertain | random | per-cluster")] = "uncertain",
    model: Annotated[
        Optional[Path], typer.Option(help="quality model (.bin with its .card.json); default: the run's")
    ] = None,
    threshold: Annotated[Optional[float], typer.Option(help="P(noise) to rank around; default: the run's")] = None,
    seed: Annotated[int, typer.Option(help="seed for --strategy random")] = 0,
) -> None:
    """Draw excerpts for annotators to label next: by default those whose P(noise) is closest to the
    threshold the run applied. Each excerpt is one chunk the size the model reads, with its document id."""
    from cleaning.quality.model import QualityModel
    from cleaning.quality.sample import read_corpus, sample, write_todo

    console = _out()
    quality = None
    if len(corpus) == 1 and (corpus[0] / "run.json").is_file():
        from cleaning.evaluation.runread import quality_of_run

        quality = quality_of_run(corpus[0])
        folder = quality.clustered if strategy == "per-cluster" and quality.clustered else quality.judged
        docs = read_corpus([folder])
        console.print(f"{len(docs)} documents of {folder}; the run's quality model: {quality.model_path}")
    else:
        docs = read_corpus(corpus)
    qmodel = QualityModel.load(model) if model else (quality.stage.model if quality else None)
    if threshold is None and quality and not model:
        threshold = quality.stage.threshold
    records = sample(docs, n, strategy, qmodel, threshold, seed)
    write_todo(records, out)
    console.print(f"wrote {len(records)} excerpts to {out} ({strategy}); label them, save under annotations/, rerun")


@quality_app.command(
    "train",
    epilog="Example: cleaning quality train -a annotations/ --pages annotations/pages --run out/crawl --out m/q.bin",
)
def quality_train(
    annotations: Annotated[list[Path], typer.Option("--annotations", "-a", help="JSONL files or folders (repeatable)")],
    out: Annotated[Path, typer.Option(help="model path; the model card is written next to it")] = Path(
        "models/quality.bin"
    ),
    pages: Annotated[
        Optional[list[Path]], typer.Option(help="line-labelled pages to train on too (needs --run; repeatable)")
    ] = None,
    run: Annotated[
        Optional[Path], typer.Option(help="a finished run over the pages' corpus: pages as its rules stage left them")
    ] = None,
    page_min_chars: Annotated[
        int, typer.Option(help="pages with fewer characters left by the rules are not trained on")
    ] = 200,
    folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
    good_recall: Annotated[float, typer.Option(help="CV recall on good the threshold must keep")] = 0.95,
    skip_invalid: Annotated[
        bool, typer.Option("--skip-invalid", help="skip invalid annotation lines instead of refusing")
    ] = False,
    quantize: Annotated[bool, typer.Option("--quantize", help="shrink the model ~7x (to ship it in git)")] = False,
) -> None:
    """Train fastText and the calibrated combiner, measure them by k-fold CV, write the model card."""
    from cleaning.quality.annotations import training_set
    from cleaning.quality.train import train_and_describe

    if pages and run is None:
        raise CleaningError("--pages needs --run: a finished run over the corpus the pages come from")
    data, report = training_set(annotations, skip_invalid)
    for line in report.errors:
        err.print(f"[yellow]skipped[/yellow] {escape(line)}", highlight=False)
    page_docs, counts = [], {}
    if pages and run is not None:
        from cleaning.evaluation.quality_pages import pages_as_rules_leave_them

        page_docs, counts = pages_as_rules_leave_them(run, pages, page_min_chars)
        if not counts["used"] + counts["too_short"]:
            raise CleaningError(f"none of the labelled pages is in the run {run}: give a run over their corpus")
    console = _out()
    card = train_and_describe(data, report, out, page_docs, counts, folds=folds, good_recall=good_recall,
                              log=lambda line: err.print(line, highlight=False), quantize=quantize)  # fmt: skip
    at = card["cv"]["at_threshold"]
    console.print(
        f"model {out}: {len(data)} annotations, {len(page_docs)} pages; {folds}-fold CV accuracy "
        f"{card['cv']['at_0.5']['accuracy']} at 0.5; threshold {card['threshold']}: "
        f"good recall {at['good']['recall']}, noise recall {at['noise']['recall']}; "
        f"Brier {card['calibration']['brier']}; card {out.with_suffix('.card.md')}"
    )
    console.print(f"use it: cleaning run … --set quality.model={out}")


tokenizer_app = typer.Typer(help="Train the sentencepiece tokenizer for the tokenize stage.", no_args_is_help=True)
app.add_typer(tokenizer_app, name="tokenizer")


@tokenizer_app.command(
    "train", epilog="Example: cleaning tokenizer train out/ --out models/ja32k.model --vocab-size 32000"
)
def tokenizer_train(
    source: Annotated[Path, typer.Argument(help="a finished run's OUTPUT (its final shards) or a folder of shards")],
    out: Annotated[Path, typer.Option(help="model path; a card (.json) is written next to it")] = Path(
        "models/tokenizer.model"
    ),
    vocab_size: Annotated[int, typer.Option(help="pieces; below 65,500 the token files are uint16")] = 32_000,
    model_type: Annotated[str, typer.Option(help="unigram, bpe, char or word")] = "unigram",
    character_coverage: Annotated[float, typer.Option(help="share of characters with pieces of their own")] = 0.9995,
    byte_fallback: Annotated[bool, typer.Option("--byte-fallback/--no-byte-fallback")] = True,
    split_digits: Annotated[bool, typer.Option("--split-digits/--no-split-digits")] = True,
    sample_mb: Annotated[float, typer.Option(help="MB of text to train on, spread evenly over clusters")] = 100.0,
    threads: Annotated[int, typer.Option(help="training threads (0 = all cores)")] = 0,
    workers: Annotated[Optional[int], typer.Option(help="parallel workers for sampling")] = None,
    ray: Annotated[bool, typer.Option("--ray/--no-ray", help="--no-ray samples in-process")] = True,
) -> None:
    """Train a tokenizer on a cleaned corpus; use it with `--set tokenize.model=PATH`."""
    import tempfile

    from cleaning.executor import make_executor
    from cleaning.stage import PrepareContext
    from cleaning.tokenize.tokenizer import Tokenizer, TokenizerParams
    from cleaning.tokenize.train import train_on_shards, write_card

    params = TokenizerParams(
        vocab_size, model_type, character_coverage, byte_fallback, split_digits, sample_mb, threads
    )
    shards = _shards_of(source)
    executor = make_executor(ray, workers, None)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".tokenizer-") as tmp:
            log = lambda line: err.print(f"tokenizer: {escape(line)}")  # noqa: E731
            ctx = PrepareContext(shards, Path(tmp), executor.map, log=log)
            training = train_on_shards(ctx, params, Path(tmp) / "tokenizer.model")
            Path(tmp, "tokenizer.model").replace(out)
    finally:
        executor.close()
    tokenizer = Tokenizer(out)
    card = write_card(out, tokenizer, params, training, [str(p) for p in shards])
    _out().print(
        f"tokenizer {out}: {tokenizer.info.vocab_size:,} pieces ({params.model_type}), EOD {tokenizer.info.eod_piece} "
        f"= {tokenizer.info.eod_id}, trained on {training['bytes'] / 1e6:.1f} MB from {training['clusters']} "
        f"clusters in {training['seconds']:.0f} s; card {card}"
    )


def _shards_of(source: Path) -> list[Path]:
    """The final shards of a run (OUTPUT with summary.json), or every .parquet in a folder."""
    from cleaning.stats import final_shards, load_summary

    if (source / "run.json").is_file():
        folder = final_shards(source, load_summary(source))
    elif source.is_dir():
        folder = source
    else:
        raise CleaningError(f"{source}: not a run's output folder or a folder of .parquet shards")
    shards = sorted(folder.glob("*.parquet"))
    if not shards:
        raise CleaningError(f"{folder}: no .parquet shards to train on")
    return shards


def main() -> None:
    """Entry point: user errors print one line and exit 2; failed runs exit 1; Ctrl-C exits 130."""
    try:
        code = app(standalone_mode=False, prog_name="cleaning")
        if code == 130:  # typer turns Ctrl-C (KeyboardInterrupt) into this code, silently
            raise KeyboardInterrupt
        if isinstance(code, int) and code:
            sys.exit(code)
    except RunFailed as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except CleaningError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        resume = "; finished shards are kept: rerun the same command to resume" if sys.argv[1:2] == ["run"] else ""
        err.print(f"interrupted{resume}", highlight=False, soft_wrap=True)
        sys.exit(130)
    except OSError as exc:  # the machine, not the program: disk full, permissions, a vanished file
        err.print(f"[red]error:[/red] {escape(os_error_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except Exception as exc:  # click's own usage errors (typer bundles its own copy of click)
        for errors in _click_exception_modules():  # not every click copy has every class (typer's has no Exit)
            if isinstance(exc, getattr(errors, "ClickException", ())):
                _show_click_error(exc, errors)
                sys.exit(exc.exit_code)  # type: ignore[attr-defined]
            if isinstance(exc, getattr(errors, "Exit", ())):
                sys.exit(exc.exit_code)  # type: ignore[attr-defined]
            if isinstance(exc, getattr(errors, "Abort", ())):
                err.print("interrupted")
                sys.exit(130)
        raise


def _show_click_error(exc: Exception, errors: object) -> None:
    """One line: `error: No such option: --wokers (Possible options: --workers); see cleaning run --help`.
    A bare `cleaning` (or a group without its command) shows the help instead."""
    no_args = getattr(errors, "NoArgsIsHelpError", None)
    if no_args is not None and isinstance(exc, no_args):
        exc.show()  # type: ignore[attr-defined]
        return
    ctx = getattr(exc, "ctx", None)
    hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    message = exc.format_message().rstrip(".")  # type: ignore[attr-defined]
    err.print(f"[red]error:[/red] {escape(message)}{hint}", highlight=False, soft_wrap=True)


def _click_exception_modules() -> list:
    """typer >= 0.24 raises its bundled click's exceptions (typer._click), older typer plain click's."""
    import importlib

    found = []
    for name in ("typer._click.exceptions", "click.exceptions"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            continue
    return found


if __name__ == "__main__":
    main()
