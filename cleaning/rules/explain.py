"""`cleaning rules explain`: show what the rules do to documents, line by line, with measured values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.rules.engine import Analysis, RulesEngine
from cleaning.rules.linefeatures import LineStats
from cleaning.rules.linestats import stats_for
from cleaning.rules.ruleset import RuleSet
from cleaning.stages.normalize import Normalize, NormalizeConfig


def load_docs(path: Path, reader: ReaderConfig, normalize: bool) -> list[Doc]:
    """Every readable document of FILE, normalised as the default pipeline does before `rules`."""
    if not path.is_file():
        raise CleaningError(f"input not found: {path}")
    stage = Normalize(NormalizeConfig()) if normalize else None
    docs = []
    for item in read_records(path, path.name, reader):
        if isinstance(item, BadRecord):
            continue
        if stage is not None:
            out = stage.apply(item, Counter())
            if not isinstance(out, Doc):
                continue
            item = out
        docs.append(item)
    return docs


def line_stats(rules: RuleSet, docs: list[Doc]) -> LineStats | None:
    """How common each line is, counted over the documents of this file only."""
    if not any(r.block in ("site_repeated", "line_model") for r in rules.line_rules):
        return None
    return stats_for([{"text": d.text, "url": d.fields.get("url")} for d in docs])


def explain(engine: RulesEngine, docs: list[Doc], ids: list[str], limit: int, console: Console) -> int:
    """Print each selected document; returns how many were shown."""
    shown = 0
    for doc, analysis in _selected(engine, docs, ids):
        if shown >= limit:
            break
        render(doc, analysis, console)
        shown += 1
    if ids and shown == 0:
        raise CleaningError(f"no document with id {', '.join(ids)}")
    return shown


def _selected(engine: RulesEngine, docs: list[Doc], ids: list[str]) -> Iterator[tuple[Doc, Analysis]]:
    for doc in docs:
        if not ids or doc.id in ids:
            yield doc, engine.analyse(doc.text, doc.fields.get("url"), all_verdicts=True)


def render(doc: Doc, analysis: Analysis, console: Console) -> None:
    removed = sum(r is not None for r in analysis.removed_by)
    failed = analysis.failed
    empty = not analysis.text.strip()
    verdict = "[red]REJECT[/red] " + (
        "rules.all_lines_removed" if empty else escape(failed[0].rule.id) if failed else ""
    )
    if not empty and not failed:
        verdict = "[green]KEEP[/green]"
    console.rule(f"{escape(doc.id)}  {verdict}", align="left")
    if doc.fields.get("url"):
        console.print(f"[dim]{escape(doc.fields['url'])}[/dim]")
    page = ", ".join(f"{k}={v:.3g}" for k, v in analysis.page.items())
    console.print(f"[dim]{removed} of {len(analysis.lines)} lines removed; {page}[/dim]")
    scores = analysis.p_line if analysis.p_line is not None else [None] * len(analysis.lines)
    for line, rule, p in zip(analysis.lines, analysis.removed_by, scores, strict=True):
        score = f"[dim]{p:.2f}[/dim] " if p is not None and p < 1 else "     " if p is not None else ""
        if rule is None:
            console.print(f"  {score}{escape(line)}", highlight=False)
        else:
            console.print(
                f"[red]- [/red]{score}[red][strike]{escape(line)}[/strike][/red]  [yellow]\\[{escape(rule)}][/yellow]",
                highlight=False,
            )
    if empty:
        console.print("[dim]no text left after line removal: document rules not measured[/dim]")
        return
    table = Table(title="document rules (on the kept lines)", title_justify="left")
    for col in ("rule", "metric", "value", "threshold", "result"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for v in analysis.verdicts:
        result = "[red]FAIL[/red]" if v.failed else "[green]pass[/green]"
        table.add_row(v.rule.id, v.rule.metric_key(), f"{v.value:.4g}", v.rule.threshold(), result)
    console.print(table)
