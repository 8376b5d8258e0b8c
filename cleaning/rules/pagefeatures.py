"""Features of a page after line removal, for the page model (P(the page is junk)).

How much prose is left and how sure the line model is about it, what the page looked like before
(size, share removed), the document metrics of the rules (character classes, sentence endings,
repetition), word-list densities, and signatures of junk the line model cannot see on its own:
truncated teasers of an index page (many long lines cut at one length without a sentence end),
listings (prices, dates, links on most lines) and keyword stuffing (one long n-gram everywhere).
"""

from __future__ import annotations

import re

import numpy as np

from cleaning.rules.linefeatures import PROSE_MIN_CHARS
from cleaning.rules.metrics import DocView, top_ngram_ratio
from cleaning.rules.words import WordLists

DOC_METRICS = [
    "hiragana_ratio", "katakana_ratio", "japanese_ratio", "symbol_ratio", "sentence_end_char_ratio",
    "mean_sentence_chars", "dup_5gram_ratio", "dup_line_ratio", "ellipsis_line_ratio", "top_3gram_ratio",
]  # fmt: skip
LONG_LINE = 40
# snippets of other pages stitched into one line ("…です。, …" or "…ます. …"): scraped doorway pages
_STITCH = re.compile(r"[。!?][,、]\s|[ぁ-んァ-ン一-龯]\.\s[ぁ-んァ-ン一-龯]")


def page_feature_names(word_lists: list[str]) -> list[str]:
    own = [
        "raw_chars", "raw_lines", "kept_chars", "kept_lines", "kept_share", "exp_content", "mean_p_kept",
        "mean_p_all", "conf_content", "prose_kept", "max_line", "price_share", "date_share", "link_share",
        "digit_kept", "alpha_kept", "site_pages", "site_share_kept", "host_share_kept", "template_kept", "dup_in_page",
        "unended_long_share", "same_length_long", "top_8gram_ratio", "stitched",
    ]  # fmt: skip
    return own + DOC_METRICS + [f"words_{name}" for name in word_lists]


def page_feature_matrix(
    col: dict[str, int],
    x: np.ndarray,
    p: np.ndarray,
    keep: np.ndarray,
    doc_of: np.ndarray,
    views: list[DocView],
    words: WordLists | None,
    word_lists: list[str],
) -> np.ndarray:
    """One feature row per page of a batch. `x` are the line features of all its lines (columns named by
    `col`), `p` P(boilerplate) per line (1 for lines a rule removed), `keep` the lines kept, `doc_of`
    the page of each line, `views` each page's kept text. Sums over lines are segment sums over the
    whole batch; only the text metrics are per page (and shared with the document rules)."""
    n = len(views)

    def per_page(values: np.ndarray) -> np.ndarray:
        return np.bincount(doc_of, weights=values.astype(np.float64), minlength=n)

    chars = x[:, col["chars"]].astype(np.float64)
    k = keep.astype(np.float64)
    kc = chars * k
    total, kept = per_page(chars), per_page(kc)
    lines, kept_lines = per_page(np.ones_like(chars)), per_page(k)
    denom, kdenom = np.maximum(kept, 1.0), np.maximum(kept_lines, 1.0)
    end = x[:, col["end_sentence"]] > 0
    long_kept = keep & (chars >= LONG_LINE)
    max_line = np.zeros(n)
    np.maximum.at(max_line, doc_of, kc)
    first = np.zeros(n, dtype=np.int64)
    first[1:] = np.cumsum(np.bincount(doc_of, minlength=n))[:-1]

    def kept_share_of(name: str) -> np.ndarray:
        """Share of the kept lines where feature `name` is non-zero."""
        return per_page((x[:, col[name]] > 0) & keep) / kdenom if name in col else np.zeros(n)

    def kept_weighted(name: str) -> np.ndarray:
        return per_page(x[:, col[name]] * kc) / denom

    cols = [
        np.log1p(total),
        np.log1p(lines),
        np.log1p(kept),
        np.log1p(kept_lines),
        kept / np.maximum(total, 1.0),
        np.log1p(per_page((1 - p) * kc)),
        per_page(p * kc) / denom,
        per_page(p * chars) / np.maximum(total, 1.0),
        np.log1p(per_page(kc * (p < 0.1))),
        np.log1p(per_page(kc * (end & (chars >= PROSE_MIN_CHARS)))),
        np.log1p(max_line),
        kept_share_of("kw_shop"),
        kept_share_of("digit_units"),
        kept_share_of("kw_link"),
        kept_weighted("digit"),
        kept_weighted("alpha"),
        x[np.minimum(first, len(x) - 1), col["site_pages"]] if len(x) else np.zeros(n),
        kept_weighted("site_share"),
        kept_weighted("host_share"),
        kept_weighted("template_share"),
        per_page((x[:, col["dup_in_page"]] > 1) & keep) / kdenom,
        per_page(chars * (long_kept & ~end)) / denom,
        _same_length(chars, long_kept, doc_of, n),
    ]
    text_rows = []
    for view in views:
        text = view.text
        row = [
            top_ngram_ratio(view, 8) if text else 0.0,
            len(_STITCH.findall(text)) * 1000 / max(len(text), 1),
            *(view.value(name) if text else 0.0 for name in DOC_METRICS),
        ]
        if words is not None and text:
            if view.words is None:
                view.words = words.match(text)
            row += [view.words[name].hits * 1000 / len(text) for name in word_lists]
        else:
            row += [0.0] * len(word_lists)
        text_rows.append(row)
    return np.column_stack([np.column_stack(cols), np.asarray(text_rows, dtype=np.float64).reshape(n, -1)]).astype(
        np.float32
    )


def _same_length(chars: np.ndarray, long_kept: np.ndarray, doc_of: np.ndarray, n: int) -> np.ndarray:
    """Per page, the largest share of its long kept lines that have one same length (index pages of
    teasers cut at one length); 0 with fewer than three long lines."""
    idx = np.flatnonzero(long_kept)
    out = np.zeros(n)
    if idx.size == 0:
        return out
    pages, lengths = doc_of[idx], chars[idx].astype(np.int64)
    order = np.lexsort((lengths, pages))
    pages, lengths = pages[order], lengths[order]
    new = np.ones(pages.size, dtype=bool)
    new[1:] = (pages[1:] != pages[:-1]) | (lengths[1:] != lengths[:-1])
    group = np.cumsum(new) - 1
    sizes = np.bincount(group)
    best = np.zeros(n)
    np.maximum.at(best, pages[new], sizes)
    longs = np.bincount(doc_of[idx], minlength=n)
    return np.where(longs >= 3, best / np.maximum(longs, 1), 0.0)
