"""How sure the figures are: a bootstrap over the labelled pages, for one run or for the difference
between two runs scored on the same pages.

Labelled pages are a sample of a crawl, and a figure measured on a few hundred of them moves by a few
points with the sample: retraining the rules stage's models with another seed alone moves held-out
content recall by 0.02 (rules/README.md). A change is measured only when the interval of its
difference excludes zero. The comparison is paired (each resample draws the same pages for both
runs), so it sees differences much smaller than either run's own interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cleaning.evaluation.align import PageResult
from cleaning.evaluation.score import WANTED_PAGES

# (figure, True when higher is better)
FIGURES = (
    ("purity", True),
    ("content_recall", True),
    ("page_precision", True),
    ("page_recall", True),
    ("boilerplate_lines_mean", False),
)
# columns of `page_sums`
_KEPT_CHARS, _WANTED, _CONTENT, _CONTENT_KEPT, _KEPT, _KEEP, _KEPT_KEEP, _B_LEFT = range(8)
RESAMPLES = 2000
LEVEL = 0.95


def page_sums(results: list[PageResult]) -> list[tuple[str, np.ndarray]]:
    """Per scored page (kept or rejected), the counts the figures are ratios of sums of: kept
    characters, wanted kept characters, content characters, content kept, whether the page was kept,
    whether it is KEEP, both, and boilerplate lines left on it when it is a kept KEEP page."""
    out = []
    for r in results:
        if r.status not in ("kept", "rejected"):
            continue
        verdict = r.page.verdict
        row = np.zeros(8)
        for label, chars, kept in zip(r.page.labels, r.chars, r.kept, strict=True):
            if kept:
                row[_KEPT_CHARS] += chars
                if label in "CN" and verdict in WANTED_PAGES:
                    row[_WANTED] += chars
            if label == "C" and verdict == "KEEP":
                row[_CONTENT] += chars
                row[_CONTENT_KEPT] += chars if kept else 0
        row[_KEPT_CHARS] += r.unmatched_chars
        row[_KEPT] = r.is_kept
        row[_KEEP] = verdict == "KEEP"
        row[_KEPT_KEEP] = r.is_kept and verdict == "KEEP"
        if row[_KEPT_KEEP]:
            row[_B_LEFT] = sum(1 for label, k in zip(r.page.labels, r.kept, strict=True) if k and label == "B")
        out.append((r.page.id, row))
    return out


def figures(sums: np.ndarray) -> np.ndarray:
    """The five figures (columns, in FIGURES order) of summed page counts (last axis: the 8 columns)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack(
            [
                sums[..., _WANTED] / sums[..., _KEPT_CHARS],
                sums[..., _CONTENT_KEPT] / sums[..., _CONTENT],
                sums[..., _KEPT_KEEP] / sums[..., _KEPT],
                sums[..., _KEPT_KEEP] / sums[..., _KEEP],
                sums[..., _B_LEFT] / sums[..., _KEPT_KEEP],
            ],
            axis=-1,
        )


def _resampled(matrices: list[np.ndarray], resamples: int, seed: int) -> list[np.ndarray]:
    """Figures of each matrix (pages x 8) under the same resamples of pages with replacement."""
    n = matrices[0].shape[0]
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)
    return [figures(counts @ m) for m in matrices]


def _interval(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = (1 - LEVEL) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def intervals(results: list[PageResult], resamples: int = RESAMPLES, seed: int = 0) -> dict[str, tuple[float, float]]:
    """A 95% percentile interval of each figure, resampling the scored pages."""
    sums = page_sums(results)
    if not sums:
        return {}
    (boot,) = _resampled([np.array([row for _, row in sums])], resamples, seed)
    return {name: _interval(boot[:, k]) for k, (name, _) in enumerate(FIGURES)}


@dataclass
class Difference:
    figure: str
    this: float
    other: float
    low: float  # interval of this - other
    high: float
    higher_is_better: bool

    @property
    def verdict(self) -> str:
        if np.isnan(self.low) or self.low <= 0 <= self.high:
            return "no clear difference"
        better = (self.low > 0) == self.higher_is_better
        return "better" if better else "worse"

    def as_dict(self) -> dict[str, float | str]:
        return {
            "this": round(self.this, 4),
            "other": round(self.other, 4),
            "difference": round(self.this - self.other, 4),
            "interval": [round(self.low, 4), round(self.high, 4)],
            "verdict": self.verdict,
        }


def compare(
    this: list[PageResult], other: list[PageResult], resamples: int = RESAMPLES, seed: int = 0
) -> tuple[list[Difference], int]:
    """Each figure of two runs on the pages both scored, their difference and its 95% interval
    (paired resamples of those pages); and how many pages that is."""
    a, b = dict(page_sums(this)), dict(page_sums(other))
    common = sorted(set(a) & set(b))
    if not common:
        return [], 0
    ma, mb = np.array([a[i] for i in common]), np.array([b[i] for i in common])
    fa, fb = figures(ma.sum(axis=0)), figures(mb.sum(axis=0))
    boot_a, boot_b = _resampled([ma, mb], resamples, seed)
    out = []
    for k, (name, higher) in enumerate(FIGURES):
        low, high = _interval(boot_a[:, k] - boot_b[:, k])
        out.append(Difference(name, float(fa[k]), float(fb[k]), low, high, higher))
    return out, len(common)


def flips(this: list[PageResult], other: list[PageResult]) -> list[dict[str, str]]:
    """Pages both runs scored whose fate differs (kept in one, rejected in the other), with their
    verdict and each run's outcome: what to read after a change, since page decisions move with
    any retraining."""
    theirs = {r.page.id: r for r in other if r.status in ("kept", "rejected")}
    out = []
    for r in this:
        o = theirs.get(r.page.id)
        if o is None or r.status not in ("kept", "rejected") or r.is_kept == o.is_kept:
            continue
        outcome = lambda x: "kept" if x.is_kept else (x.reason or x.status)  # noqa: E731
        out.append({"id": r.page.id, "verdict": r.page.verdict, "this": outcome(r), "other": outcome(o)})
    return out
