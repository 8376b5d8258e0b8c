"""The five figures of output cleanliness, and where content was lost and boilerplate survived.

Character-weighted over raw lines (characters after normalisation). A line is *wanted* when it is
C or N on a KEEP or BORDER page; *content* is a C line on a KEEP page. Pages the run removed as
duplicates are left out (the page itself was judged elsewhere).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from cleaning.evaluation.align import PageResult

WANTED_PAGES = ("KEEP", "BORDER")
TARGETS = {
    "purity": 0.95,
    "content_recall": 0.95,
    "page_precision": 0.90,
    "page_recall": 0.90,
    "boilerplate_lines_mean": 1.0,
    "boilerplate_lines_median": 0.0,
}


@dataclass
class Scores:
    purity: float
    content_recall: float
    page_precision: float
    page_recall: float
    boilerplate_lines_mean: float
    boilerplate_lines_median: float
    pages: int
    pages_kept: int
    left_out: dict[str, int] = field(default_factory=dict)  # duplicate / missing pages

    def as_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def score(results: list[PageResult]) -> Scores:
    scored = [r for r in results if r.status in ("kept", "rejected")]
    kept_chars = wanted_kept = content = content_kept = 0
    b_left: list[int] = []
    for r in scored:
        verdict = r.page.verdict
        for label, chars, kept in zip(r.page.labels, r.chars, r.kept, strict=True):
            if kept:
                kept_chars += chars
                if label in "CN" and verdict in WANTED_PAGES:
                    wanted_kept += chars
            if label == "C" and verdict == "KEEP":
                content += chars
                content_kept += chars if kept else 0
        if r.is_kept and verdict == "KEEP":
            b_left.append(sum(1 for label, k in zip(r.page.labels, r.kept, strict=True) if k and label == "B"))
        # unmatched kept characters are text nobody labelled: count them as unwanted
        kept_chars += r.unmatched_chars
    kept_pages = [r for r in scored if r.is_kept]
    keep_pages = [r for r in scored if r.page.verdict == "KEEP"]
    return Scores(
        purity=_ratio(wanted_kept, kept_chars),
        content_recall=_ratio(content_kept, content),
        page_precision=_ratio(sum(r.page.verdict == "KEEP" for r in kept_pages), len(kept_pages)),
        page_recall=_ratio(sum(r.is_kept for r in keep_pages), len(keep_pages)),
        boilerplate_lines_mean=statistics.fmean(b_left) if b_left else float("nan"),
        boilerplate_lines_median=float(statistics.median(b_left)) if b_left else float("nan"),
        pages=len(scored),
        pages_kept=len(kept_pages),
        left_out=dict(Counter(r.status for r in results if r.status not in ("kept", "rejected"))),
    )


def content_losses(results: list[PageResult]) -> Counter[str]:
    """Characters of content (C lines of KEEP pages) removed, by the rule or reason that removed them."""
    lost: Counter[str] = Counter()
    for r in results:
        if r.status not in ("kept", "rejected") or r.page.verdict != "KEEP":
            continue
        for label, chars, kept, why in zip(r.page.labels, r.chars, r.kept, r.removed_by, strict=True):
            if label == "C" and not kept and chars:
                lost[why or "removed"] += chars
    return lost


def page_outcomes(results: list[PageResult]) -> Counter[tuple[str, str]]:
    """(verdict, what the run did) counts: kept, or the reason that rejected the page."""
    return Counter((r.page.verdict, "kept" if r.is_kept else r.reason or r.status) for r in results)


_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("date or number", re.compile(r"^[\d\s/.:年月日時分()\-〜~(月火水木金土日)・,]+$")),
    ("contact/address", re.compile(r"TEL|FAX|電話|〒|住所|営業時間|受付時間|開庁|定休|@|E-?mail|メール", re.I)),
    ("link or file", re.compile(r"https?://|www\.|\.(?:pdf|html?)\b|PDF|KB\)|MB\)", re.I)),
    (
        "promotion",
        re.compile(r"送料|無料|キャンペーン|オフ|OFF|%|円|お申込|申し込|お気軽|ご相談|ご予約|購入|セール|ポイント"),
    ),
    ("symbol only", re.compile(r"^[^\w]+$")),
]


def boilerplate_kind(line: str) -> str:
    """A rough shape of a surviving boilerplate line, to see which kinds dominate."""
    s = line.strip()
    for name, pattern in _KINDS:
        if pattern.search(s):
            return name
    if s.endswith(("。", "!", "?", "」", ")")):
        return "sentence-like"
    if len(s) <= 20:
        return "short line (menu, heading, tag)"
    return "title-like line (headline, link text)"


def surviving_boilerplate(results: list[PageResult]) -> tuple[Counter[str], Counter[str]]:
    """Boilerplate lines (B) the run kept, on pages it kept: by kind, and the most frequent texts."""
    kinds: Counter[str] = Counter()
    texts: Counter[str] = Counter()
    for r in results:
        if not r.is_kept:
            continue
        for line, label, kept in zip(r.page.lines(), r.page.labels, r.kept, strict=True):
            if kept and label == "B":
                kinds[boilerplate_kind(line)] += 1
                texts[line.strip()[:80]] += 1
    return kinds, texts
