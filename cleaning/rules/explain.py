"""`cleaning rules explain`: show what the rules do to documents, line by line, with measured values."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.rules.engine import Analysis, RulesEngine
from cleaning.rules.ruleset import RuleSet
from cleaning.rules.sitelines import host_of, repeated_lines_in
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


def site_keys(rules: RuleSet, docs: list[Doc]) -> np.ndarray | None:
    """Site-level repeated lines, counted over the documents of this file only."""
    site = [r for r in rules.line_rules if r.block == "site_repeated"]
    if not site:
        return None
    rows = [{"text": d.text, "url": d.fields.get("url")} for d in docs]
    return repeated_lines_in(rows, site[0].params["min_pages"], site[0].params["min_share"])


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
            yield doc, engine.analyse(doc.text, host_of(doc.fields.get("url")), all_verdicts=True)


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
    console.print(f"[dim]{removed} of {len(analysis.lines)} lines removed[/dim]")
    for line, rule in zip(analysis.lines, analysis.removed_by, strict=True):
        if rule is None:
            console.print(f"  {escape(line)}", highlight=False)
        else:
            console.print(
                f"[red]- [strike]{escape(line)}[/strike][/red]  [yellow]\\[{escape(rule)}][/yellow]", highlight=False
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
