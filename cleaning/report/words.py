"""Whole-word terms and names for genre clusters, from a morphological analyser (fugashi + unidic-lite).

Character n-grams cut across words (`リー · ライ · ンジ`); a data lead needs words. Each
cluster's sampled text is cut into words; a run of nouns (with prefixes and noun suffixes) is
one compound (商品一覧, 北海道産), and its nouns count on their own too. Terms are then ranked by
class-based TF-IDF as in `terms.py`, and a term contained in a better one is not shown twice.
A cluster's name is its best three terms.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

TERMS = 8
NAME_TERMS = 3
MAX_PARTS = 4  # longer noun runs are phrases, not names
_CANDIDATES = 300
_MIN_LIFT = 1.5
_MAX_SPREAD = 0.5  # a term in more than this share of clusters names none of them
_EXTEND = 0.7  # a compound replaces a word it contains when it holds this share of the word's count
_NOUNS = {"普通名詞", "固有名詞"}
_KANA_ONLY = re.compile(r"^[\u3041-\u309f]{1,3}$")  # こと, ところ, もの: grammar, not topic
_TAGGER: list[Any] = []


def _tagger() -> Any:
    if not _TAGGER:
        import fugashi  # with unidic-lite: the dictionary installs from PyPI, no system MeCab

        _TAGGER.append(fugashi.Tagger())
    return _TAGGER[0]


def word_counts(text: str) -> Counter[str]:
    """Nouns of two characters or more, and compounds of 2 to MAX_PARTS words inside runs of nouns."""
    counts: Counter[str] = Counter()
    run: list[tuple[str, str]] = []  # (surface, noun | prefix | suffix | adjective)

    def flush() -> None:
        counts.update(s for s, kind in run if kind == "noun" and len(s) >= 2 and not _KANA_ONLY.match(s))
        for i in range(len(run)):
            if run[i][1] == "suffix":
                continue
            for j in range(i + 2, min(len(run), i + MAX_PARTS) + 1):
                part = run[i:j]
                if part[-1][1] != "prefix" and any(kind == "noun" for _, kind in part):
                    counts["".join(s for s, _ in part)] += 1
        run.clear()

    for word in _tagger()(text):
        f = word.feature
        if f.pos1 == "名詞" and f.pos2 in _NOUNS:
            kind = "noun"
        elif f.pos1 == "接頭辞":
            kind = "prefix"
        elif f.pos1 == "形状詞":  # スマート(フォン), 高速(道路): inside compounds only
            kind = "adjective"
        elif f.pos1 == "接尾辞" and f.pos2 == "名詞的" and run:
            kind = "suffix"
        else:
            flush()
            continue
        if word.white_space:  # a space ends a compound (商品 一覧 are two labels)
            flush()
        run.append((word.surface, kind))
    flush()
    return counts


def counts_of(clusters: list[list[str]]) -> list[tuple[Counter[str], Counter[str]]]:
    """Per cluster: word counts over its documents, and in how many of them each word occurs."""
    out = []
    for docs in clusters:
        counts: Counter[str] = Counter()
        present: Counter[str] = Counter()
        for doc in docs:
            words = word_counts(doc) if doc else Counter()
            counts.update(words)
            present.update(words.keys())
        out.append((counts, present))
    return out


def distinctive_words(
    clusters: list[list[str]], top: int = TERMS, mapper: Any = None, chunk: int = 200
) -> list[list[str]]:
    """The `top` most distinctive words or compounds of each cluster (given as sampled documents).

    A term's c-TF-IDF score is scaled by the share of the cluster's documents it occurs in, so
    one document's pet word (a blogger's nickname) does not name a cluster of many documents.
    Cutting text into words is the cost, so `mapper(fn, items, label)` may spread it over workers."""
    chunks = [clusters[i : i + chunk] for i in range(0, len(clusters), chunk)]
    parts = mapper(counts_of, chunks, "cut cluster samples into words") if mapper else map(counts_of, chunks)
    counted = [c for part in parts for c in part]
    freq: Counter[str] = Counter()
    spread: Counter[str] = Counter()  # clusters a term occurs in
    for c, _ in counted:
        freq.update(c)
        spread.update(c.keys())
    too_common = _MAX_SPREAD * len(counted) if len(counted) >= 3 else len(counted)
    sizes = [sum(c.values()) for c, _ in counted]
    mean_size, total = sum(sizes) / max(1, len(sizes)), max(1, sum(sizes))
    out = []
    for (local, present), size, docs in zip(counted, sizes, clusters, strict=True):
        n_docs = max(1, sum(1 for d in docs if d))
        pool = []
        for term, n in local.most_common(_CANDIDATES):
            rate = n / max(size, 1)
            if n >= 2 and rate > _MIN_LIFT * freq[term] / total and spread[term] <= too_common:
                score = rate * math.log1p(mean_size / freq[term]) * present[term] / n_docs
                pool.append((score, term, present[term]))
        # in two documents at least, when there are two; a small cluster of unrelated documents shares
        # no term, and is then described by its documents' own terms rather than left unnamed
        need = 2 if n_docs >= 2 else 1
        scored = [(sc, t) for sc, t, docs_with in pool if docs_with >= need] or [(sc, t) for sc, t, _ in pool]
        chosen: list[str] = []
        for _, term in sorted(scored, key=lambda item: (-item[0], item[1])):
            term = _longest(term, local)
            if not any(term in c or c in term for c in chosen):
                chosen.append(term)
            if len(chosen) == top:
                break
        out.append(chosen)
    return out


def _longest(term: str, local: Counter[str]) -> str:
    """The longest compound that holds `term` nearly every time it occurs (自転 → 自転車)."""
    floor = _EXTEND * local[term]
    longer = [t for t, n in local.items() if n >= floor and len(t) > len(term) and term in t]
    return max(longer, key=lambda t: (len(t), local[t], t)) if longer else term


def name_of(terms: list[str]) -> str:
    """A cluster's readable name: its best terms joined by ・ ('' when it has none)."""
    return "・".join(terms[:NAME_TERMS])
