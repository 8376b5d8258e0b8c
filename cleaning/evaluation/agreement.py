"""How far two labellings of the same pages agree, and what the second scores as a cleaner.

The five figures measure a cleaner against one reading of each page. Where two careful readings of
the same pages differ, a cleaner that did exactly what the second reader says would still fall short
of a perfect score against the first: that score is the ceiling the labels allow, and it tells a
labelling problem (the readers disagree) from a cleaning one (they agree, the cleaner does not).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cleaning.errors import CleaningError
from cleaning.evaluation.align import Normalizer, PageResult, line_chars, normalized_pieces
from cleaning.evaluation.intervals import intervals
from cleaning.evaluation.score import Scores, score
from cleaning.pagelabels import PageLabel

# How the second reading is turned into a cleaner: which of its page verdicts keep the page, and
# which of its line labels keep the line there.
CLEANERS = {
    "second reading: its KEEP pages, C and N lines": (("KEEP",), "CN"),
    "second reading: its KEEP and BORDER pages": (("KEEP", "BORDER"), "CN"),
}


@dataclass
class Agreement:
    pages: int  # labelled in both, with the same number of lines
    only_first: int
    only_second: int
    mismatched: list[str]  # ids whose two records have different line counts (not compared)
    verdicts: Counter[tuple[str, str]]  # (first, second) -> pages
    line_chars: Counter[tuple[str, str]]  # (first, second) -> characters
    # figures against the first labelling: the run's (with --run), then the second reading's as cleaners
    scored: dict[str, tuple[Scores, dict[str, tuple[float, float]]]] = field(default_factory=dict)

    @property
    def verdict_kappa(self) -> float:
        return cohen_kappa(self.verdicts)

    @property
    def line_kappa(self) -> float:
        return cohen_kappa(self.line_chars)

    @property
    def line_agreement(self) -> float:
        total = sum(self.line_chars.values())
        return sum(v for (a, b), v in self.line_chars.items() if a == b) / total if total else float("nan")

    def as_dict(self) -> dict:
        return {
            "pages": self.pages,
            "only_first": self.only_first,
            "only_second": self.only_second,
            "mismatched": self.mismatched,
            "verdicts": {f"{a}/{b}": n for (a, b), n in sorted(self.verdicts.items())},
            "line_chars": {f"{a}/{b}": n for (a, b), n in sorted(self.line_chars.items())},
            "verdict_kappa": round(self.verdict_kappa, 4),
            "line_kappa": round(self.line_kappa, 4),
            "line_agreement": round(self.line_agreement, 4),
            "figures_against_first": {
                name: {"scores": s.as_dict(), "intervals_95": {k: [round(v, 4) for v in lh] for k, lh in iv.items()}}
                for name, (s, iv) in self.scored.items()
            },
        }


def cohen_kappa(confusion: Counter[tuple[str, str]]) -> float:
    """Agreement beyond chance for a (first, second) -> weight table (scikit-learn's, weighted)."""
    from sklearn.metrics import cohen_kappa_score

    pairs = [(a, b, n) for (a, b), n in confusion.items() if n]
    if not pairs:
        return float("nan")
    first, second, weights = zip(*pairs, strict=True)
    return float(cohen_kappa_score(first, second, sample_weight=weights))


def as_cleaner(
    first: list[PageLabel],
    second: dict[str, PageLabel],
    chars: dict[str, list[int]],
    keep_pages: tuple[str, ...],
    keep_lines: str,
) -> list[PageResult]:
    """The second reading as a run over the first's pages: a page is kept when its second verdict is
    in `keep_pages`, and then only the lines whose second label is in `keep_lines`."""
    out = []
    for page in first:
        other = second[page.id]
        kept_page = other.verdict in keep_pages
        kept = [kept_page and label in keep_lines for label in other.labels]
        why = "" if kept_page else f"second reading: {other.verdict}"
        removed = [None if k else why or f"second reading: {lab}" for k, lab in zip(kept, other.labels, strict=True)]
        out.append(PageResult(page, "kept" if kept_page else "rejected", why, chars[page.id], kept, removed))
    return out


def agreement(first: list[PageLabel], second: list[PageLabel], normalize: Normalizer) -> Agreement:
    """Compare two labellings page by page (pages in both, with text); the first is the reference."""
    other = {p.id: p for p in second}
    ids_first = {p.id for p in first}
    common, mismatched = [], []
    for page in first:
        if page.id not in other:
            continue
        if len(page.labels) != len(other[page.id].labels):
            mismatched.append(page.id)
            continue
        common.append(page)
    chars = {p.id: line_chars(normalized_pieces(p.lines(), normalize)) for p in common}
    verdicts: Counter[tuple[str, str]] = Counter()
    lines: Counter[tuple[str, str]] = Counter()
    for page in common:
        verdicts[(page.verdict, other[page.id].verdict)] += 1
        for a, b, n in zip(page.labels, other[page.id].labels, chars[page.id], strict=True):
            lines[(a, b)] += n
    result = Agreement(
        pages=len(common),
        only_first=len(ids_first - set(other)),
        only_second=len(set(other) - ids_first),
        mismatched=mismatched,
        verdicts=verdicts,
        line_chars=lines,
    )
    if common:
        for name, (keep_pages, keep_lines) in CLEANERS.items():
            results = as_cleaner(common, other, chars, keep_pages, keep_lines)
            result.scored[name] = (score(results), intervals(results))
    return result


def compare_labellings(first: list[Path], second: list[Path], run: Path | None = None) -> Agreement:
    """`cleaning annotations agree`: load both labellings and fill in the text of reference records,
    from `run` (the pages as that run read them, normalised as it normalised them) or else from the
    crawl file a record names as its `source` (lines weighed by the normalize stage's defaults)."""
    from cleaning.evaluation.evaluate import load_labels, run_normalizer
    from cleaning.evaluation.runread import open_run, raw_records, rebuild_stages
    from cleaning.pagelabels import resolve_texts
    from cleaning.stages.normalize import Normalize, NormalizeConfig

    pages_a, _ = load_labels(first)
    pages_b, _ = load_labels(second)
    problems: list[str] = []
    if run is not None:
        view = open_run(run)
        raw = raw_records(view, {p.id for p in pages_a + pages_b})
        texts = {i: r["text"] for i, r in raw.items()}
        problems = resolve_texts(pages_a, texts) + resolve_texts(pages_b, texts)
        normalize = run_normalizer(rebuild_stages(view, ("normalize",)))
    else:
        normalize = Normalize(NormalizeConfig()).lines
    texts = texts_from_sources(pages_a + pages_b)  # by id: either record's source serves both
    problems += resolve_texts(pages_a, texts) + resolve_texts(pages_b, texts)
    if problems:
        raise CleaningError(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
    both = {p.id for p in pages_b}
    textless = [p.id for p in pages_a if p.id in both and p.text is None]
    if textless:
        hint = "not read by that run" if run is not None else "give --run, a run that read them, or a 'source'"
        raise CleaningError(f"{len(textless)} pages in both labellings have no text ({hint}), e.g. {textless[0]!r}")
    result = agreement(pages_a, pages_b, normalize)
    if run is not None and result.pages:  # the run itself on the same pages, beside the ceiling
        from cleaning.evaluation.evaluate import evaluate

        common = {p.id for p in pages_a if p.id in both}
        runs = [r for r in evaluate(run, first).results if r.page.id in common]
        if any(r.status in ("kept", "rejected") for r in runs):
            scores = score(runs)  # pages the run removed as duplicates are left out, as in `cleaning eval`
            result.scored = {f"the run ({scores.pages} pages)": (scores, intervals(runs)), **result.scored}
    return result


def texts_from_sources(pages: list[PageLabel]) -> dict[str, str]:
    """The raw text of reference records that name the crawl file they come from (`source`, relative to
    the working folder or to the label file), read from it."""
    from cleaning.readers import BadRecord, ReaderConfig, read_records

    wanted: dict[Path, set[str]] = {}
    for page in pages:
        if page.text is not None or not page.source:
            continue
        here = Path(page.where.rsplit(":", 1)[0]).parent
        path = next((p for p in (Path(page.source), here / page.source) if p.is_file()), None)
        if path is None:
            raise CleaningError(f"{page.where}: page {page.id}: source not found: {page.source}")
        wanted.setdefault(path, set()).add(page.id)
    texts: dict[str, str] = {}
    for path, ids in wanted.items():
        for doc in read_records(path, path.name, ReaderConfig()):
            if not isinstance(doc, BadRecord) and doc.id in ids:
                texts[doc.id] = doc.text
    return texts
