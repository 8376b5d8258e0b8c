"""Map a run's output back onto the raw lines of a labelled page.

Stages only remove lines (normalize drops empty ones and rewrites characters line by line; rules drop
boilerplate lines), so the kept text is a subsequence of the page's normalised lines. Each raw line is
normalised on its own, and the kept lines are matched in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cleaning.evaluation.runread import Fate
from cleaning.pagelabels import PageLabel

Normalizer = Callable[[str], list[str]]
LineExplainer = Callable[[str], list[str | None]]


@dataclass
class PageResult:
    """One labelled page after the run: per raw line its characters, whether it was kept and, when it
    was not, what removed it (a line rule id, or the stage.reason that rejected the whole page)."""

    page: PageLabel
    status: str  # kept | rejected | duplicate | missing
    reason: str  # the reject reason for rejected / duplicate pages
    chars: list[int]
    kept: list[bool]
    removed_by: list[str | None]
    unmatched_chars: int = 0  # kept characters that match no raw line (should stay 0)

    @property
    def is_kept(self) -> bool:
        return self.status == "kept"


def normalized_pieces(raw_lines: list[str], normalize: Normalizer) -> list[list[str]]:
    """What each raw line becomes after normalisation: usually one line, none when it was blank."""
    return [normalize(line) for line in raw_lines]


def line_chars(pieces: list[list[str]]) -> list[int]:
    """Characters of each raw line after normalisation, as the figures weigh lines."""
    return [sum(len(p) for p in ps) for ps in pieces]


def align_page(
    page: PageLabel,
    fate: Fate | None,
    normalize: Normalizer,
    explain: LineExplainer | None,
    duplicate_stages: tuple[str, ...] = ("dedup",),
) -> PageResult:
    raw = page.lines()
    pieces = normalized_pieces(raw, normalize)
    chars = line_chars(pieces)
    n = len(raw)
    if fate is None:
        return PageResult(page, "missing", "", chars, [False] * n, [None] * n)
    if fate.kept_text is None:
        status = "duplicate" if fate.stage in duplicate_stages else "rejected"
        why = f"{fate.stage}:{fate.reason}" if not fate.reason.startswith(fate.stage) else fate.reason
        removed: list[str | None] = [why] * n
        if explain is not None:  # lines removed before the page was rejected keep their own rule
            for i, rule in enumerate(_line_rules(pieces, explain)):
                if rule is not None:
                    removed[i] = rule
        return PageResult(page, status, why, chars, [False] * n, removed)
    kept, unmatched = _match(pieces, fate.kept_text.split("\n"))
    removed = [None] * n
    rules = _line_rules(pieces, explain) if explain is not None else [None] * n
    for i in range(n):
        if not kept[i] and chars[i]:
            removed[i] = rules[i] or "removed"
    return PageResult(page, "kept", "", chars, kept, removed, unmatched)


def _match(pieces: list[list[str]], kept_lines: list[str]) -> tuple[list[bool], int]:
    """Greedy in-order match of kept lines to the raw lines' normalised pieces."""
    flat = [(i, s) for i, ps in enumerate(pieces) for s in ps]
    kept = [False] * len(pieces)
    j = unmatched = 0
    for line in kept_lines:
        k = j
        while k < len(flat) and flat[k][1] != line:
            k += 1
        if k == len(flat):
            unmatched += len(line)
            continue
        kept[flat[k][0]] = True
        j = k + 1
    return kept, unmatched


def _line_rules(pieces: list[list[str]], explain: LineExplainer) -> list[str | None]:
    """The line rule that removes each raw line, from the stage's own explanation of the page."""
    flat = [(i, s) for i, ps in enumerate(pieces) for s in ps]
    if not flat:
        return [None] * len(pieces)
    verdicts = explain("\n".join(s for _, s in flat))
    out: list[str | None] = [None] * len(pieces)
    for (i, _), rule in zip(flat, verdicts, strict=True):
        if rule is not None and out[i] is None:
            out[i] = rule
    return out
