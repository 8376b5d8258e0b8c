"""Features of every line of a batch of documents, for the line model (P(boilerplate) per line).

Everything is computed for the whole batch at once with numpy: the lines of all documents are joined
into one code-point array, each code point's character classes come from one table lookup
(`charclass`), classes are counted per line with `np.add.reduceat`, and neighbour features are
shifted arrays masked at document boundaries. A line is described by:

- its shape: length, character classes, how it starts and ends, separators, particles after words
  (grammar, not vocabulary), script changes, digits before date units;
- keyword families of `rules/keywords/*.txt` (links, files, contact, place, shop, navigation...),
  counted with one Aho-Corasick pass over the batch;
- what the rules of `lines.yaml` say about it (the rule id is a categorical feature);
- its neighbours (two lines either side, windows of seven and fifteen) and its place in the page:
  before the first or after the last prose line, run of short lines around it, of lines opening
  with the same character, of title-like lines, repeats in the page (never the page's size);
- how common it is: on how many pages of its site, on how many sites, how many pages of its site
  share its template (`LineStats`);
- its wording: a linear score over character n-grams of its two ends (`lexical.py`), given by the
  caller (the engine scores the lines no rule removed; training fills it out of fold).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cleaning.rules import charclass as cc
from cleaning.rules.linescan import COUNTS, Scanned, codepoints
from cleaning.rules.words import owners_automaton

PROSE_MIN_CHARS = 25  # a "prose line" ends like a sentence and is at least this long
SHORT_MAX_CHARS = 20  # a "short line" (menus, tags) is at most this long
TITLE_CHARS = (6, 60)  # a "title-like line" is this long and does not end with a period
_PERIODS = np.array([ord("。"), ord(".")])


@dataclass
class DocLines:
    """One document as the line model sees it."""

    lines: list[str]  # stripped lines
    host: str | None
    rules: list[int]  # per line: code of the rule that removes it, 0 for none


class LineStats:
    """How often lines occur in the corpus. This default knows nothing (every line is unique); the
    rules stage's corpus-wide step fills `CorpusLineStats` (cleaning/rules/linestats.py)."""

    def lookup(
        self, docs: list[DocLines], hashes: np.ndarray, templates: np.ndarray, has_template: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per line of the batch (given by its hash and its template's hash, see `linescan`):
        site_share (share of the site's pages holding the line), site_pages (log of the site's pages),
        host_share (log share of all sites holding it, 0 when on one site), template_share (share of
        the site's pages with a line of the same template); and, not a model feature, template_pages
        (how many distinct pages of the site have a line of the same template: doorway pages)."""
        zeros = np.zeros(hashes.size, dtype=np.float32)
        return {name: zeros for name in [*CORPUS, "template_pages"]}

    def site_share(
        self, host: str | None, lines: Sequence[str], hashes: np.ndarray | None = None
    ) -> tuple[np.ndarray, float]:
        """Share of the host's pages holding each line, and the host's page count (site_repeated);
        `hashes` are the lines' hashes when the caller has them (`linescan`)."""
        return np.zeros(len(lines), dtype=np.float32), 0.0


class Keywords:
    """Keyword families (`rules/keywords/NAME.txt`) in one Aho-Corasick automaton."""

    def __init__(self, families: dict[str, list[str]]) -> None:
        self.names = sorted(families)
        # a word's value is the index of its set of families: matches come back as (end, value) pairs
        codes: dict[tuple[int, ...], int] = {}

        def code(_word: str, owners: tuple[int, ...]) -> int:
            return codes.setdefault(tuple(sorted(set(owners))), len(codes))

        self._automaton = owners_automaton([families[name] for name in self.names], code)
        self._membership = np.zeros((max(len(codes), 1), len(self.names)), dtype=np.float32)
        for fams, i in codes.items():
            self._membership[i, list(fams)] = 1.0

    def counts(self, joined: str, starts: np.ndarray) -> np.ndarray:
        """Matches per line (rows) and family (columns); `starts` are the lines' offsets in `joined`."""
        out = np.zeros((starts.size, len(self.names)), dtype=np.float32)
        if self._automaton is None or not joined:
            return out
        hits = np.array(list(self._automaton.iter(joined)), dtype=np.int64).reshape(-1, 2)
        if hits.size:
            rows = np.searchsorted(starts, hits[:, 0], side="right") - 1
            np.add.at(out, rows, self._membership[hits[:, 1]])
        return out


OWN = [
    "chars", "log_chars", "hira", "kata", "kanji", "alpha", "digit", "symbol", "space", "ja_punct",
    "commas", "periods", "end_sentence", "end_exclaim", "end_emote", "end_close", "end_ellipsis", "end_colon",
    "end_kana", "end_hira", "start_bullet", "start_digit", "separators", "particles", "script_changes",
    "digit_units", "digit_hyphens", "open_digit", "rule", "rule_any",
]  # fmt: skip
# No absolute page size (lines, characters): on the training pages long pages are mostly menus, so
# the model learnt "long page, boilerplate line" and removed whole articles of long unseen pages.
POSITION = [
    "rel_index", "rel_chars", "before_prose", "after_prose", "prose_dist",
    "short_run", "prose_run", "dup_in_page", "doc_prose_share", "start_run", "title_run",
]  # fmt: skip
_BASE = ["chars", "end_sentence", "rule_any", "hira"]
CONTEXT = [f"n{k}_{name}" for k in (-2, -1, 1, 2) for name in _BASE]
CONTEXT += [f"w3_{name}" for name in _BASE] + ["w7_end_sentence", "w7_rule_any", "w7_kw_sum"]
CORPUS = ["site_share", "site_pages", "host_share", "template_share"]
LEXICAL = ["lexical"]
CATEGORICAL = ["rule"]


def feature_names(keyword_families: Sequence[str]) -> list[str]:
    """Column names of `line_features`, in order (the keyword families come from the rules folder)."""
    return OWN + [f"kw_{name}" for name in keyword_families] + POSITION + CONTEXT + CORPUS + LEXICAL


def _shift(values: np.ndarray, k: int, doc_of: np.ndarray, fill: float) -> np.ndarray:
    """values[i - k] within the same document (k > 0: previous lines), else `fill`."""
    out = np.full_like(values, fill)
    n = values.size
    if abs(k) >= n:
        return out
    if k > 0:
        same = doc_of[k:] == doc_of[:-k]
        out[k:] = np.where(same, values[:-k], fill)
    else:
        k = -k
        same = doc_of[:-k] == doc_of[k:]
        out[:-k] = np.where(same, values[k:], fill)
    return out


def _window_mean(values: np.ndarray, doc_of: np.ndarray, radius: int) -> np.ndarray:
    """Mean of values over the lines within `radius` of each line, inside its document."""
    v = values.astype(np.float64)
    total = np.concatenate([[0.0], np.cumsum(v)])
    n = v.size
    idx = np.arange(n)
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = doc_of[1:] != doc_of[:-1]
    doc_start = np.maximum.accumulate(np.where(breaks, idx, 0))
    ends = np.append(np.flatnonzero(breaks)[1:], n)
    doc_end = np.repeat(ends, np.diff(np.append(np.flatnonzero(breaks), n)))
    lo = np.maximum(idx - radius, doc_start)
    hi = np.minimum(idx + radius + 1, doc_end)
    return ((total[hi] - total[lo]) / (hi - lo)).astype(np.float32)


def _same_runs(key: np.ndarray, doc_of: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive lines (within a document) sharing each line's key; 0 where
    the key is negative (no key: an empty line)."""
    n = key.size
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = (key[1:] != key[:-1]) | (doc_of[1:] != doc_of[:-1])
    starts = np.flatnonzero(breaks)
    lengths = np.diff(np.append(starts, n))
    return np.where(key >= 0, np.repeat(lengths, lengths), 0).astype(np.float32)


def _runs(flag: np.ndarray, doc_of: np.ndarray) -> np.ndarray:
    """Length of the run of consecutive True values (within a document) each line belongs to."""
    return _same_runs(np.where(flag, 0, -1), doc_of)


def _distance_to(flag: np.ndarray, doc_of: np.ndarray) -> np.ndarray:
    """Lines to the nearest True line of the same document (large when there is none)."""
    n = flag.size
    big = 1e6
    idx = np.arange(n, dtype=np.float64)
    breaks = np.ones(n, dtype=bool)
    breaks[1:] = doc_of[1:] != doc_of[:-1]
    doc_start = np.maximum.accumulate(np.where(breaks, idx, 0))
    last = np.maximum.accumulate(np.where(flag, idx, -big))
    back = np.where(last >= doc_start, idx - last, big)
    nxt = np.minimum.accumulate(np.where(flag, idx, big)[::-1])[::-1]
    doc_end = np.minimum.accumulate(np.where(np.append(breaks[1:], True), idx, big)[::-1])[::-1]
    fwd = np.where(nxt <= doc_end, nxt - idx, big)
    return np.minimum(back, fwd)


def _dup_in_page(hashes: np.ndarray, doc_of: np.ndarray) -> np.ndarray:
    """How many times each line occurs in its own document (1 = once)."""
    with np.errstate(over="ignore"):
        keys = hashes ^ (doc_of.astype(np.uint64) * np.uint64(0xD6E8FEB86659FD93))
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return counts[inverse].astype(np.float32)


def line_features(
    docs: list[DocLines],
    keywords: Keywords,
    stats: LineStats | None = None,
    scanned: Scanned | None = None,
    corpus: dict[str, np.ndarray] | None = None,
    lexical: np.ndarray | None = None,
) -> np.ndarray:
    """A float32 matrix (column-major): one row per line of every document (in order), one column per
    `feature_names(keywords.names)`. `scanned`: the same lines already scanned (`linescan`);
    `corpus`: their `LineStats.lookup`, when the caller has it; `lexical`: every line's
    `LexicalModel.score` (0 when not given)."""
    stats = stats or LineStats()
    names = feature_names(keywords.names)
    lines = [line for d in docs for line in d.lines]
    n = len(lines)
    out = np.empty((n, len(names)), dtype=np.float32, order="F")  # filled column by column
    if n == 0:
        return out
    col = {name: i for i, name in enumerate(names)}

    def put(name: str, values: np.ndarray | float) -> None:
        out[:, col[name]] = values

    doc_of = np.repeat(np.arange(len(docs)), [len(d.lines) for d in docs])
    sc = scanned or Scanned.of(lines)
    cp, starts, lens = sc.cp, sc.starts, sc.lens
    counts, hashes, templates, has_template = sc.counts, sc.hashes, sc.templates, sc.has_template
    c = {name: counts[:, i] for i, name in enumerate(COUNTS)}
    nonempty = lens > 0
    ends = starts + lens
    cls = cc.TABLE
    last = np.where(nonempty, cls[cp[np.maximum(ends - 1, 0)]], 0)
    first = np.where(nonempty, cls[cp[np.minimum(starts, cp.size - 1)]], 0)
    before_last = np.where(lens > 1, cls[cp[np.maximum(ends - 2, 0)]], 0)
    flen = np.maximum(lens, 1).astype(np.float32)
    end_sentence = ((last & cc.SENTENCE_END) != 0) | (((last & cc.CLOSE) != 0) & ((before_last & cc.SENTENCE_END) != 0))
    hira = c["hira"] / flen
    put("chars", lens)
    put("log_chars", np.log1p(lens))
    put("hira", hira)
    for name in ("kata", "kanji", "alpha", "digit", "symbol", "space", "ja_punct"):
        put(name, c[name] / flen)
    put("commas", c["comma"])
    put("periods", c["period"])
    put("end_sentence", end_sentence)
    put("end_exclaim", (last & cc.EXCLAIM) != 0)
    put("end_emote", (last & cc.EMOTE) != 0)
    put("end_close", (last & cc.CLOSE) != 0)
    put("end_ellipsis", (last & cc.ELLIPSIS) != 0)
    put("end_colon", (last & cc.COLON) != 0)
    put("end_kana", (last & (cc.HIRA | cc.KATA)) != 0)
    put("end_hira", ((last & cc.HIRA) != 0) | ((before_last & cc.HIRA) != 0))
    put("start_bullet", (first & cc.BULLET) != 0)
    put("start_digit", (first & cc.DIGIT) != 0)
    put("separators", c["separator"])
    # grammar, not vocabulary: a particle after a kanji or katakana word, and how often the script
    # changes (menus and names are runs of one script; sentences alternate kanji and kana)
    put("particles", c["particles"])
    put("script_changes", c["script_changes"] / flen)
    put("digit_units", c["digit_units"])
    put("digit_hyphens", c["digit_hyphens"])
    put("open_digit", c["open_digit"])
    rule = np.fromiter((r for d in docs for r in d.rules), dtype=np.float32, count=n)
    rule_any = (rule > 0).astype(np.float32)
    put("rule", rule)
    put("rule_any", rule_any)
    # keywords only in lines no rule removed (the others go anyway): the scan is the costly part
    free = np.flatnonzero(rule == 0)
    kw = np.zeros((n, len(keywords.names)), dtype=np.float32)
    if free.size:
        _, free_starts, _, free_joined = codepoints([lines[i] for i in free.tolist()])
        kw[free] = keywords.counts(free_joined, free_starts)
    for j, name in enumerate(keywords.names):
        put(f"kw_{name}", kw[:, j])

    # place in the page
    doc_lines = np.bincount(doc_of).astype(np.float64)
    first_line = np.concatenate([[0], np.cumsum(doc_lines[:-1])]).astype(np.int64)
    index = np.arange(n) - first_line[doc_of]
    chars64 = lens.astype(np.float64)
    doc_chars = np.bincount(doc_of, weights=chars64)
    before = np.cumsum(chars64) - chars64 - np.concatenate([[0], np.cumsum(doc_chars)[:-1]])[doc_of]
    prose = end_sentence & (lens >= PROSE_MIN_CHARS)
    prose_idx = np.flatnonzero(prose)
    first_prose = np.full(len(docs), np.inf)
    last_prose = np.full(len(docs), -np.inf)
    if prose_idx.size:
        np.minimum.at(first_prose, doc_of[prose_idx], index[prose_idx])
        np.maximum.at(last_prose, doc_of[prose_idx], index[prose_idx])
    short = (lens <= SHORT_MAX_CHARS) & ~end_sentence
    prose_chars = np.bincount(doc_of, weights=np.where(prose, chars64, 0), minlength=len(docs))
    put("rel_index", index / np.maximum(doc_lines[doc_of] - 1, 1))
    put("rel_chars", before / np.maximum(doc_chars[doc_of], 1))
    put("before_prose", index < first_prose[doc_of])
    put("after_prose", index > last_prose[doc_of])
    put("prose_dist", np.minimum(_distance_to(prose, doc_of), 50))
    put("short_run", _runs(short, doc_of))
    put("prose_run", _runs(prose, doc_of))
    put("dup_in_page", _dup_in_page(hashes, doc_of))
    put("doc_prose_share", (prose_chars / np.maximum(doc_chars, 1))[doc_of])
    # lists: lines opening with the same character (Q:..., ・..., 【...) and runs of title-like lines
    # (a related-questions list ends its lines with ? and is otherwise sentence-shaped)
    first_cp = np.where(nonempty, cp[np.minimum(starts, cp.size - 1)], -1)
    put("start_run", _same_runs(first_cp, doc_of))
    last_cp = np.where(nonempty, cp[np.maximum(ends - 1, 0)], -1)
    titled = (lens >= TITLE_CHARS[0]) & (lens <= TITLE_CHARS[1]) & ~np.isin(last_cp, _PERIODS)
    put("title_run", _runs(titled, doc_of))

    # neighbours
    base = {"chars": out[:, col["log_chars"]].copy(), "end_sentence": end_sentence.astype(np.float32),
            "rule_any": rule_any, "hira": hira}  # fmt: skip
    for k in (-2, -1, 1, 2):
        for name, values in base.items():
            put(f"n{k}_{name}", _shift(values, -k, doc_of, -1.0))
    for name, values in base.items():
        put(f"w3_{name}", _window_mean(values, doc_of, 3))
    put("w7_end_sentence", _window_mean(base["end_sentence"], doc_of, 7))
    put("w7_rule_any", _window_mean(rule_any, doc_of, 7))
    put("w7_kw_sum", _window_mean(kw.sum(axis=1), doc_of, 7))

    # corpus
    for name, values in (corpus or stats.lookup(docs, hashes, templates, has_template)).items():
        if name in col:
            put(name, values)
    put("lexical", 0.0 if lexical is None else lexical)
    return out
