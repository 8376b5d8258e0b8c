"""Score a finished run against line-labelled pages: the library call behind `cleaning eval`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.evaluation.align import Normalizer, PageResult, align_page
from cleaning.evaluation.runread import LiveStage, RunView, fates, open_run, raw_records, rebuild_stages
from cleaning.evaluation.score import Scores, score
from cleaning.pagelabels import PageLabel, load_page_labels, resolve_texts

LINE_STAGES = ("normalize", "rules")


@dataclass
class Evaluation:
    run: Path
    scores: Scores
    results: list[PageResult]
    warnings: list[str] = field(default_factory=list)


def load_labels(paths: list[Path]) -> tuple[list[PageLabel], list[str]]:
    report = load_page_labels(paths)
    if report.errors:
        shown = "\n  ".join(report.errors[:10])
        more = f"\n  … and {len(report.errors) - 10} more" if len(report.errors) > 10 else ""
        raise CleaningError(f"{len(report.errors)} invalid page label records:\n  {shown}{more}")
    if not report.pages:
        raise CleaningError(f"no page records (with 'labels' or 'lines') in {[str(p) for p in paths]}")
    return report.pages, report.warnings


def pages_of_run(view: RunView, label_paths: list[Path]) -> tuple[list[PageLabel], set[str], list[str]]:
    """Labelled pages with the text and url the run read filled in (reference records resolved), the
    ids the run read, and warnings."""
    pages, warnings = load_labels(label_paths)
    raw = raw_records(view, {p.id for p in pages})
    for page in pages:
        if page.url is None and page.id in raw:
            page.url = raw[page.id]["url"]
    warnings += resolve_texts(pages, {i: r["text"] for i, r in raw.items()})
    return pages, set(raw), warnings


def run_normalizer(live: dict[str, LiveStage]) -> Normalizer:
    """How the run normalised a line (identity, blank lines dropped, without a normalize stage)."""
    return live["normalize"].stage.lines if "normalize" in live else (lambda s: [s] if s.strip() else [])


def evaluate(output: Path, label_paths: list[Path], log: Callable[[str], None] = lambda _: None) -> Evaluation:
    view = open_run(output)
    pages, _, warnings = pages_of_run(view, label_paths)
    ends = fates(view, {p.id for p in pages})
    live = rebuild_stages(view, LINE_STAGES)
    for name, stage in live.items():
        if not stage.current:
            warnings.append(f"the {name} stage's rules or config changed since the run: line attributions may be off")
    normalize = run_normalizer(live)
    explainer = live.get("rules")
    results = []
    missing = 0
    for page in pages:
        if page.text is None:
            missing += 1
            continue
        fate = ends.get(page.id)
        explain = None
        if explainer is not None:
            url = page.url

            def explain(text: str, url: str | None = url) -> list[str | None]:
                return explainer.stage.line_verdicts(Doc("", text, {"url": url})) or []

        results.append(align_page(page, fate, normalize, explain))
    if missing:
        warnings.append(f"{missing} labelled pages without text were not read by this run (left out)")
    if not any(r.status in ("kept", "rejected") for r in results):
        raise CleaningError(f"none of the {len(pages)} labelled pages is in the run {output}")
    log(f"scored {len(results)} pages")
    return Evaluation(output, score(results), results, warnings)


def write_outputs(result: Evaluation, dest: Path, extra: dict | None = None) -> dict[str, Path]:
    """eval.json (figures and breakdowns, for comparing runs; `extra` entries added to it) and
    eval.html (every page line by line)."""
    from cleaning.evaluation.score import content_losses, page_outcomes, surviving_boilerplate
    from cleaning.evaluation.views import write_html
    from cleaning.shards import write_json_atomic

    dest.mkdir(parents=True, exist_ok=True)
    kinds, texts = surviving_boilerplate(result.results)
    data = {
        "run": str(result.run),
        "scores": result.scores.as_dict(),
        **(extra or {}),
        "content_lost_chars": dict(content_losses(result.results).most_common()),
        "page_outcomes": [
            {"verdict": v, "outcome": o, "pages": n} for (v, o), n in sorted(page_outcomes(result.results).items())
        ],
        "boilerplate_kept_by_kind": dict(kinds.most_common()),
        "pages": [
            {
                "id": r.page.id,
                "verdict": r.page.verdict,
                "status": r.status,
                "reason": r.reason,
                "kept_chars": sum(c for c, k in zip(r.chars, r.kept, strict=True) if k),
                "boilerplate_lines_kept": sum(
                    1 for lab, k in zip(r.page.labels, r.kept, strict=True) if k and lab == "B"
                ),
            }
            for r in result.results
        ],
        "warnings": result.warnings,
    }
    json_path, html_path = dest / "eval.json", dest / "eval.html"
    write_json_atomic(json_path, data)
    write_html(html_path, result.scores, result.results, data)
    del texts
    return {"json": json_path, "html": html_path}
