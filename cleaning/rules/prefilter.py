"""Line patterns matched through a literal prefilter: most lines hold none of the substrings a pattern
needs, so one Aho-Corasick pass over the line replaces a regex attempt per pattern.

A pattern's necessary substrings are read off its parse tree: every full match contains at least one
of them. The prefilter can therefore only skip lines a pattern cannot match, so the rule a line gets
is exactly the one the patterns give on their own (first match in file order)."""

from __future__ import annotations

import itertools
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass

from cleaning.rules.words import owners_automaton

try:  # the parser behind `re`; without it every pattern is simply tried on every line
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser as P  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - other Python versions
    P = C = None

_LIMIT = 32  # most alternative strings tracked per node
# Under IGNORECASE `re` also matches İ and ı to i/I, whose casefolds differ: those letters end a factor.
_SAFE_ASCII = frozenset(string.printable) - {"i", "I"}


@dataclass(frozen=True)
class _Info:
    """What a node matches: exactly one of `strings` (exact), or text containing one of them."""

    strings: frozenset[str]
    exact: bool


_EMPTY = _Info(frozenset({""}), True)


def necessary_substrings(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Casefolded substrings of which every match of `pattern` contains one; None when there are none
    worth checking (the pattern can match without any fixed text)."""
    if P is None:
        return None
    try:
        tree = P.parse(pattern.pattern, pattern.flags)
    except Exception:  # an unparseable pattern just goes unfiltered
        return None
    info = _sequence(list(tree), bool(pattern.flags & re.IGNORECASE))
    if info is None or "" in info.strings:
        return None
    return info.strings


def _char(c: str, icase: bool) -> str | None:
    if not icase or c in _SAFE_ASCII or c.lower() == c.upper() == c.casefold() == c:
        return c.casefold()
    return None


def _node(op: object, av: object, icase: bool) -> _Info | None:  # one case per opcode
    if op is C.LITERAL:
        c = _char(chr(av), icase)  # type: ignore[arg-type]
        return None if c is None else _Info(frozenset({c}), True)
    if op is C.IN:
        chars: set[str] = set()
        for kind, arg in av:  # type: ignore[attr-defined]
            if kind is C.LITERAL:
                chars.add(chr(arg))
            elif kind is C.RANGE and arg[1] - arg[0] < _LIMIT:
                chars.update(chr(x) for x in range(arg[0], arg[1] + 1))
            else:  # NEGATE, CATEGORY, large ranges
                return None
        folded = {_char(c, icase) for c in chars}
        if None in folded or len(folded) > _LIMIT:
            return None
        return _Info(frozenset(folded), True)  # type: ignore[arg-type]
    if op is C.SUBPATTERN:
        _group, add, drop, sub = av  # type: ignore[misc]
        return _sequence(list(sub), (icase or bool(add & re.IGNORECASE)) and not drop & re.IGNORECASE)
    if op in (C.AT, C.ASSERT, C.ASSERT_NOT):  # zero width: the text around it is contiguous
        return _EMPTY
    if op is C.ATOMIC_GROUP:
        return _sequence(list(av), icase)  # type: ignore[arg-type]
    if op is C.BRANCH:
        alts = [_sequence(list(alt), icase) for alt in av[1]]  # type: ignore[index]
        if any(a is None for a in alts):
            return None
        union = frozenset().union(*(a.strings for a in alts))  # type: ignore[union-attr]
        exact = all(a.exact for a in alts)  # type: ignore[union-attr]
        if (not exact and "" in union) or len(union) > _LIMIT * 4:
            return None
        return _Info(union, exact and len(union) <= _LIMIT)
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
        lo, hi, sub = av  # type: ignore[misc]
        inner = _sequence(list(sub), icase)
        if inner is None:
            return None
        if lo == 0:
            return _Info(inner.strings | {""}, True) if inner.exact and hi == 1 else None
        if lo == hi == 1:
            return inner
        return None if "" in inner.strings else _Info(inner.strings, False)
    return None  # ANY, NOT_LITERAL, CATEGORY, GROUPREF, ...


def _sequence(items: Sequence[tuple[object, object]], icase: bool) -> _Info | None:
    """A concatenation: runs of exact nodes multiply out; the most selective run or factor wins."""
    candidates: list[frozenset[str]] = []
    run: frozenset[str] = frozenset({""})
    whole_exact = True
    for op, av in items:
        info = _node(op, av, icase)
        if info is not None and info.exact:
            product = frozenset(a + b for a, b in itertools.product(run, info.strings))
            if len(product) <= _LIMIT:
                run = product
                continue
            info = _Info(info.strings, False)
        whole_exact = False
        candidates.append(run)
        run = frozenset({""})
        if info is not None:
            candidates.append(info.strings)
    if whole_exact:
        return _Info(run, True)
    candidates.append(run)
    useful = [c for c in candidates if "" not in c]
    if not useful:
        return None
    return _Info(max(useful, key=lambda c: (min(map(len, c)), -len(c))), False)


class PatternSet:
    """Fullmatch a line against patterns in order (each with a line-length limit); the first that
    matches wins, as in one alternation of them all."""

    def __init__(self, patterns: Sequence[re.Pattern[str]], limits: Sequence[int]) -> None:
        self._patterns = [p.fullmatch for p in patterns]
        self._limits = list(limits)
        needs = [necessary_substrings(p) for p in patterns]
        self._always = [i for i, factors in enumerate(needs) if factors is None]  # tried on every line
        self._automaton = owners_automaton([factors or () for factors in needs])

    def first_match(self, line: str) -> int | None:
        """Index of the first pattern that matches the whole line, or None."""
        hits = list(self._automaton.iter(line.casefold())) if self._automaton is not None else []
        if not hits and not self._always:
            return None  # most lines: no pattern's text occurs
        candidates = set(self._always)
        for _end, owners in hits:
            candidates.update(owners)
        n = len(line)
        for i in sorted(candidates):
            if n <= self._limits[i] and self._patterns[i](line):
                return i
        return None
