"""One compiled pass over the code points of a batch of lines: per-line character-class counts, a
64-bit hash of each line, and a hash of each line's template.

This is the rules stage's hot loop (every character of the corpus goes through it once), so it is
compiled with numba instead of being a sequence of numpy passes. Every place that hashes lines (the
corpus-wide line count and the per-line lookups) calls `scan`, so the hashes always agree.

A line's template is the line with each run of name characters (kanji, katakana, digits, Latin
letters) replaced by one placeholder: one text repeated with place names swapped has one template.
A template counts only when the line has at least TEMPLATE_MIN_CHARS characters and at least
TEMPLATE_MIN_KEPT characters outside the placeholders (otherwise "X の X" would match everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from cleaning.rules import charclass as cc

TEMPLATE_MIN_CHARS = 20
TEMPLATE_MIN_KEPT = 8
#: columns of the `counts` matrix `scan` returns
COUNTS = [
    "hira", "kata", "kanji", "alpha", "digit", "symbol", "space", "ja_punct", "comma", "period", "separator",
    "particles", "script_changes", "digit_units", "digit_hyphens", "open_digit",
]  # fmt: skip
_BITS = np.array(
    [cc.HIRA, cc.KATA, cc.KANJI, cc.ALPHA, cc.DIGIT, cc.SYMBOL, cc.SPACE, cc.JA_PUNCT, cc.COMMA, cc.PERIOD,
     cc.SEPARATOR],
    dtype=np.uint32,
)  # fmt: skip
_NAME = np.uint32(cc.KANJI | cc.KATA | cc.DIGIT | cc.ALPHA)
_WORD = np.uint32(cc.KANJI | cc.KATA)
_PLACEHOLDER = np.uint64(0x58)  # "X"


@numba.njit(cache=True, nogil=True)
def _mix(h: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


@numba.njit(cache=True, nogil=True)
def _scan(cp, starts, lens, table, bits, name, word, hira, digit, date_unit, hyphen, opening, particle, min_chars,
          min_kept):  # fmt: skip  # pragma: no cover - compiled
    n = starts.size
    k = bits.size
    counts = np.zeros((n, k + 5), dtype=np.float32)
    hashes = np.zeros(n, dtype=np.uint64)
    templates = np.zeros(n, dtype=np.uint64)
    has_template = np.zeros(n, dtype=np.bool_)
    prime = np.uint64(0x100000001B3)
    for i in range(n):
        h = np.uint64(0xCBF29CE484222325)
        t = np.uint64(0xCBF29CE484222325)
        kept = 0
        in_name = False
        prev = np.uint32(0)
        prev_script = 0
        for j in range(starts[i], starts[i] + lens[i]):
            c = cp[j]
            cl = table[c]
            h = (h ^ np.uint64(c)) * prime
            for b in range(k):
                if cl & bits[b]:
                    counts[i, b] += 1.0
            if (prev & word) and (cl & particle):
                counts[i, k] += 1.0
            script = 1 if cl & hira else (2 if cl & word else 0)
            if script and prev_script and script != prev_script:
                counts[i, k + 1] += 1.0
            if (prev & digit) and (cl & date_unit):
                counts[i, k + 2] += 1.0
            if (prev & digit) and (cl & hyphen):
                counts[i, k + 3] += 1.0
            if (prev & opening) and (cl & digit):
                counts[i, k + 4] += 1.0
            if cl & name:
                if not in_name:
                    t = (t ^ np.uint64(0x58)) * prime
                    in_name = True
            else:
                t = (t ^ np.uint64(c)) * prime
                kept += 1
                in_name = False
            prev = cl
            prev_script = script
        hashes[i] = _mix(h ^ np.uint64(lens[i]))
        if lens[i] >= min_chars and kept >= min_kept:
            templates[i] = _mix(t)
            has_template[i] = True
    return counts, hashes, templates, has_template


@dataclass
class Scanned:
    """The lines of a batch and what one compiled pass found in them."""

    cp: np.ndarray
    starts: np.ndarray
    lens: np.ndarray
    counts: np.ndarray
    hashes: np.ndarray
    templates: np.ndarray
    has_template: np.ndarray

    @classmethod
    def of(cls, lines: Sequence[str]) -> Scanned:
        cp, starts, lens, _ = codepoints(lines)
        return cls(cp, starts, lens, *scan(cp, starts, lens))


def codepoints(lines: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Code points of the lines joined by newlines, each line's start and length, and the joined text."""
    n = len(lines)
    lens = np.fromiter(map(len, lines), dtype=np.int64, count=n)
    joined = "\n".join(lines)
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts = np.zeros(n, dtype=np.int64)
    if n > 1:
        starts[1:] = np.cumsum(lens[:-1] + 1)
    return cp, starts, lens, joined


def scan(cp: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per line: counts (columns `COUNTS`), hash, template hash, and whether it has a template."""
    if starts.size == 0:
        empty = np.empty(0, dtype=np.uint64)
        return np.zeros((0, len(COUNTS)), dtype=np.float32), empty, empty, np.empty(0, dtype=bool)
    return _scan(
        cp, starts, lens, cc.TABLE, _BITS, _NAME, _WORD, np.uint32(cc.HIRA), np.uint32(cc.DIGIT),
        np.uint32(cc.DATE_UNIT), np.uint32(cc.HYPHEN), np.uint32(cc.OPEN), np.uint32(cc.PARTICLE),
        TEMPLATE_MIN_CHARS, TEMPLATE_MIN_KEPT,
    )  # fmt: skip


def line_hashes(lines: Sequence[str]) -> np.ndarray:
    """The 64-bit hash of each line (the same hash `scan` gives)."""
    return scan(*codepoints(lines)[:3])[1]
