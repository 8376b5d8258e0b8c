"""What `cleaning eval` shows: the figures against their targets, where content was lost, which
boilerplate survived, and each page line by line (terminal and a self-contained HTML file)."""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from cleaning.evaluation.agreement import Agreement
from cleaning.evaluation.align import PageResult
from cleaning.evaluation.intervals import Difference
from cleaning.evaluation.score import TARGETS, Scores
from cleaning.pagelabels import LINE_LABELS, VERDICTS

FIGURES = [
    ("purity", "purity: kept characters that are wanted", ">="),
    ("content_recall", "content recall: content characters kept", ">="),
    ("page_precision", "page precision: kept pages that are KEEP", ">="),
    ("page_recall", "page recall: KEEP pages kept", ">="),
    ("boilerplate_lines_mean", "boilerplate lines left per kept KEEP page, mean", "<="),
    ("boilerplate_lines_median", "boilerplate lines left per kept KEEP page, median", "<="),
]


def _fmt(value: float) -> str:
    return "-" if isinstance(value, float) and math.isnan(value) else f"{value:.3f}".rstrip("0").rstrip(".")


def render_scores(
    scores: Scores, console: Console, title: str = "", intervals: dict[str, tuple[float, float]] | None = None
) -> None:
    """The figures against their targets, with their 95% intervals over the labelled pages when given."""
    table = Table(title=title or f"{scores.pages} labelled pages, {scores.pages_kept} kept", title_justify="left")
    columns = ("figure", "value", "95% interval", "target", "") if intervals else ("figure", "value", "target", "")
    for col in columns:
        table.add_column(col)
    for key, label, op in FIGURES:
        value = getattr(scores, key)
        target = TARGETS[key]
        ok = not math.isnan(value) and (value >= target if op == ">=" else value <= target)
        row = [label, _fmt(value)]
        if intervals:
            row.append(_span(*intervals[key]) if key in intervals else "")
        table.add_row(*row, f"{op} {target:g}", "[green]ok[/green]" if ok else "[red]below[/red]")
    console.print(table)
    if scores.left_out:
        parts = ", ".join(f"{n} {k}" for k, n in sorted(scores.left_out.items()))
        console.print(f"left out: {parts} (duplicates were judged as their other copy; missing = not in this run)")


def _span(low: float, high: float) -> str:
    return f"{_fmt(low)} – {_fmt(high)}"


def render_comparison(
    diffs: list[Difference], pages: int, other: str, console: Console, changed: list[dict[str, str]] | None = None
) -> None:
    """Each figure of this run against another on the pages both scored, with the 95% interval of the
    difference (paired over pages) and whether it is a clear change; then the pages whose fate changed
    by verdict (newly kept DROP pages and newly rejected KEEP pages are the ones to read)."""
    table = Table(title=f"against {other}, on the {pages} labelled pages both runs scored", title_justify="left")
    for col in ("figure", "this run", "other run", "difference", "95% interval", ""):
        table.add_column(col)
    style = {"better": "green", "worse": "red"}
    for d in diffs:
        verdict = d.verdict
        shown = f"[{style[verdict]}]{verdict}[/{style[verdict]}]" if verdict in style else verdict
        span = "-" if math.isnan(d.low) else f"{d.low:+.3f} – {d.high:+.3f}"
        table.add_row(d.figure, _fmt(d.this), _fmt(d.other), f"{d.this - d.other:+.3f}", span, shown)
    console.print(table)
    if changed:
        counts: dict[tuple[str, str], int] = {}
        for c in changed:
            key = ("newly kept" if c["this"] == "kept" else "newly rejected", c["verdict"])
            counts[key] = counts.get(key, 0) + 1
        parts = [f"{what} {verdict} {n}" for (what, verdict), n in sorted(counts.items())]
        console.print(f"pages whose fate changed ({len(changed)}, listed in eval.json): " + ", ".join(parts))


def render_counter(console: Console, title: str, rows: list[tuple[Any, ...]], columns: tuple[str, ...]) -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(x)) for x in row))
    console.print(table)


_STYLE = {  # (label, kept) -> rich style
    ("C", True): "green",
    ("N", True): "",
    ("B", True): "bold red",
    ("C", False): "yellow strike",
    ("N", False): "dim strike",
    ("B", False): "dim strike",
}


def render_page(result: PageResult, console: Console) -> None:
    page = result.page
    head = f"{page.id}  {page.verdict}  -> {result.status}{' (' + result.reason + ')' if result.reason else ''}"
    console.print(f"[bold]{escape(head)}[/bold]  {escape(page.url or '')}")
    for i, (line, label, kept, why) in enumerate(
        zip(page.lines(), page.labels, result.kept, result.removed_by, strict=True)
    ):
        tag = f" [dim]<- {escape(why)}[/dim]" if why and not kept and result.is_kept else ""
        style = _STYLE[(label, kept)]
        text = escape(line) if not style else f"[{style}]{escape(line)}[/{style}]"
        console.print(f"[dim]{i:4d}[/dim] {label} {text}{tag}", highlight=False, soft_wrap=True)


_CSS = """
body{font-family:"Noto Sans CJK JP","Hiragino Sans",sans-serif;margin:1.5em;color:#222}
table.fig td,table.fig th{padding:2px 10px;text-align:left}
.page{border-top:2px solid #888;margin-top:1.5em;padding-top:.5em}
.l{white-space:pre-wrap;font-size:13px;line-height:1.45;margin:0}
.l span.n{color:#999;display:inline-block;width:3.5em}
.l span.lab{display:inline-block;width:1.4em;font-weight:bold}
.kC{background:#dff5df}.kB{background:#ffd6d6}.kN{background:#f3f3f3}
.rC{background:#fff1c2;text-decoration:line-through}.rB,.rN{color:#aaa;text-decoration:line-through}
.why{color:#888;font-size:11px;margin-left:1em}
.legend span{padding:1px 6px;margin-right:6px}
"""


def write_html(path: Path, scores: Scores, results: list[PageResult], summary: dict[str, Any]) -> None:
    """One self-contained file: the figures, an index of pages (worst first) and every page's lines
    coloured by label and by whether the run kept them."""
    esc = html.escape
    out = [f"<!doctype html><meta charset=utf-8><title>cleaning eval</title><style>{_CSS}</style>"]
    out.append(f"<h1>cleaning eval: {esc(str(summary.get('run', '')))}</h1>")
    spans = summary.get("intervals_95", {})
    out.append("<table class=fig><tr><th>figure</th><th>value</th><th>95% interval</th><th>target</th></tr>")
    for key, label, op in FIGURES:
        span = _span(*spans[key]) if key in spans else ""
        out.append(
            f"<tr><td>{esc(label)}</td><td>{_fmt(getattr(scores, key))}</td><td>{span}</td>"
            f"<td>{op} {TARGETS[key]:g}</td></tr>"
        )
    out.append("</table>")
    against = summary.get("against")
    if against:
        out.append(f"<h2>Against {esc(against['run'])} ({against['pages']} pages both scored)</h2>")
        out.append("<table class=fig><tr><th>figure</th><th>this run</th><th>other run</th><th>difference</th>")
        out.append("<th>95% interval</th><th></th></tr>")
        for name, d in against["figures"].items():
            lo, hi = d["interval"]
            out.append(
                f"<tr><td>{esc(name)}</td><td>{_fmt(d['this'])}</td><td>{_fmt(d['other'])}</td>"
                f"<td>{d['difference']:+.3f}</td><td>{lo:+.3f} – {hi:+.3f}</td><td>{esc(d['verdict'])}</td></tr>"
            )
        out.append("</table>")
        changed = against.get("changed_fate", [])
        if changed:
            out.append(f"<h3>Pages whose fate changed ({len(changed)})</h3><ul>")
            for c in changed:
                out.append(
                    f"<li><a href='#{esc(c['id'])}'>{esc(c['id'])}</a> {c['verdict']}: "
                    f"{esc(c['this'])} (other run: {esc(c['other'])})</li>"
                )
            out.append("</ul>")
    out.append(
        "<p class=legend><span class=kC>kept content</span><span class=kB>kept boilerplate</span>"
        "<span class=kN>kept neutral</span><span class=rC>removed content</span>"
        "<span class=rB>removed boilerplate / neutral</span></p>"
    )
    ordered = sorted(results, key=_badness, reverse=True)
    out.append("<h2>Pages (most wrongly kept or lost characters first)</h2><ol>")
    for r in ordered:
        out.append(
            f"<li><a href='#{esc(r.page.id)}'>{esc(r.page.id)}</a> {r.page.verdict} → {esc(r.status)}"
            f"{' (' + esc(r.reason) + ')' if r.reason else ''}: {_badness(r)} chars wrong</li>"
        )
    out.append("</ol>")
    for r in ordered:
        page = r.page
        out.append(f"<div class=page id='{esc(page.id)}'><h3>{esc(page.id)} — {page.verdict} → {esc(r.status)}")
        out.append(f"{' (' + esc(r.reason) + ')' if r.reason else ''}</h3>")
        if page.url:
            out.append(f"<div>{esc(page.url)}</div>")
        if page.why:
            out.append(f"<div><i>{esc(page.why)}</i></div>")
        for i, (line, label, kept, why) in enumerate(zip(page.lines(), page.labels, r.kept, r.removed_by, strict=True)):
            cls = ("k" if kept else "r") + label
            tag = f"<span class=why>{esc(why)}</span>" if why and not kept and r.is_kept else ""
            out.append(f"<p class='l {cls}'><span class=n>{i}</span><span class=lab>{label}</span>{esc(line)}{tag}</p>")
        out.append("</div>")
    path.write_text("\n".join(out), encoding="utf-8")


def _badness(r: PageResult) -> int:
    """Characters the run got wrong on this page: unwanted kept plus content lost."""
    wrong = 0
    wanted_page = r.page.verdict in ("KEEP", "BORDER")
    for label, chars, kept in zip(r.page.labels, r.chars, r.kept, strict=True):
        if (kept and (label == "B" or not wanted_page)) or (
            not kept and label == "C" and r.page.verdict == "KEEP" and r.status != "duplicate"
        ):
            wrong += chars
    return wrong


def render_findings(results: list[PageResult], console: Console, top: int) -> None:
    """Where content was lost, what the run did with each kind of page, which boilerplate survived."""
    from cleaning.evaluation.score import content_losses, page_outcomes, surviving_boilerplate

    lost = content_losses(results)
    total = sum(lost.values())
    render_counter(
        console,
        f"content characters lost ({total:,}), by what removed them",
        [(why, f"{n:,}", f"{n / total:.0%}") for why, n in lost.most_common(top)],
        ("removed by", "chars", "share"),
    )
    render_counter(
        console,
        "pages by verdict and outcome",
        [(v, o, n) for (v, o), n in sorted(page_outcomes(results).items())],
        ("verdict", "outcome", "pages"),
    )
    kinds, texts = surviving_boilerplate(results)
    render_counter(
        console,
        f"boilerplate lines kept ({sum(kinds.values()):,}), by kind",
        [(k, n) for k, n in kinds.most_common()],
        ("kind", "lines"),
    )
    render_counter(
        console, "most frequent boilerplate lines kept", [(t, n) for t, n in texts.most_common(top)], ("line", "times")
    )


def render_agreement(result: Agreement, first: str, second: str, console: Console) -> None:
    """Two labellings of the same pages: verdicts and line labels side by side, how far they agree
    beyond chance, and the figures the second reading scores as a cleaner against the first (beside
    the run's, when there is one)."""
    console.print(
        f"{result.pages} pages labelled in both (first: {first}; second: {second}); "
        f"{result.only_first} only in the first, {result.only_second} only in the second"
    )
    for page_id in result.mismatched:
        note = "the two records have different line counts (left out)"
        console.print(f"[yellow]warning[/yellow] page {escape(page_id)}: {note}")
    for title, counts, keys, kappa in (
        ("page verdicts, in pages", result.verdicts, VERDICTS, result.verdict_kappa),
        ("line labels, in characters", result.line_chars, tuple(LINE_LABELS), result.line_kappa),
    ):
        console.print(f"{title} (rows: first, columns: second); Cohen's kappa {_fmt(kappa)}")
        table = Table()
        table.add_column("")
        for key in keys:
            table.add_column(key, justify="right")
        for a in keys:
            table.add_row(a, *(f"{counts.get((a, b), 0):,}" for b in keys))
        console.print(table)
    console.print(f"characters labelled alike: {_fmt(result.line_agreement)}")
    console.print("scored against the first labelling (the second reading as a cleaner: the ceiling of these labels)")
    table = Table()
    table.add_column("figure")
    for name in result.scored:
        table.add_column(name.replace("second reading", "second"))
    table.add_column("target")
    for key, _, op in FIGURES:
        cells = []
        for scores, spans in result.scored.values():
            value = getattr(scores, key)
            cells.append(_fmt(value) + (f" [{_span(*spans[key])}]" if key in spans else ""))
        table.add_row(key.replace("_", " "), *cells, f"{op} {TARGETS[key]:g}")
    console.print(table)
