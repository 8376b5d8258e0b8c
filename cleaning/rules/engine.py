"""Apply a RuleSet to one document: which lines go (and by which rule), then document verdicts."""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

import numpy as np
import xxhash

from cleaning.rules.metrics import LINE_END_CHARS, DocView
from cleaning.rules.ruleset import DocRule, LineRule, RuleSet


@dataclass
class Verdict:
    rule: DocRule
    value: float
    failed: bool


@dataclass
class Analysis:
    """Everything the rules decided about one document (the stage and `rules explain` share it)."""

    lines: list[str]
    removed_by: list[str | None]  # rule id per line, None when kept
    text: str  # the kept lines
    verdicts: list[Verdict]

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]


def site_key(host: str, line: str) -> int:
    """One 64-bit key per (host, line): the site-level boilerplate table stores only these."""
    return xxhash.xxh3_64_intdigest(f"{host}\n{line}".encode())


class RulesEngine:
    """Compiled rules. Stateless per document, so one engine serves every document of a worker."""

    def __init__(self, rules: RuleSet, site_keys: np.ndarray | None = None) -> None:
        self.rules = rules
        self._exact: dict[str, str] = {}
        for rule in rules.line_rules:
            for line in rule.lines:
                self._exact.setdefault(line, rule.id)
        patterns = [r for r in rules.line_rules if r.pattern is not None]
        self._pattern_ids = {f"r{i}": r.id for i, r in enumerate(patterns)}
        # One combined regex per line-length limit: a line is tried only against the rules whose
        # max_chars admits it, so long prose lines skip most patterns (the stage's hot loop).
        self._limits = sorted({r.max_chars or _UNLIMITED for r in patterns})
        self._by_limit = [_combine(patterns, limit) for limit in self._limits]
        self._blocks = [r for r in rules.line_rules if r.block]
        self._memo: dict[str, str | None] = {}  # nav lines recur across pages: most lookups hit
        self._site = set(site_keys.tolist()) if site_keys is not None else None

    def line_rule_of(self, line: str) -> str | None:
        """The per-line rule (exact list or pattern) that removes this stripped line, if any."""
        try:
            return self._memo[line]
        except KeyError:
            pass
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        rule = self._memo[line] = self._match_line(line)
        return rule

    def _match_line(self, line: str) -> str | None:
        rule = self._exact.get(line)
        if rule is None:
            i = bisect.bisect_left(self._limits, len(line))
            pattern = self._by_limit[i] if i < len(self._by_limit) else None
            m = pattern.fullmatch(line) if pattern is not None else None
            if m is not None:
                rule = self._pattern_ids[m.lastgroup]  # type: ignore[index]
        return rule

    def classify(self, lines: list[str], host: str | None) -> list[str | None]:
        stripped = [line.strip() for line in lines]
        memo = self._memo
        removed = [memo[s] if s in memo else self.line_rule_of(s) for s in stripped]
        for rule in self._blocks:
            for i in self._block_hits(rule, stripped, host, removed):
                if removed[i] is None:
                    removed[i] = rule.id
        return removed

    def _block_hits(
        self, rule: LineRule, lines: list[str], host: str | None, removed: list[str | None] | None = None
    ) -> list[int]:
        """Indexes of the lines a block rule removes."""
        if rule.block == "short_run":
            return short_runs(lines, rule.params["min_run"], rule.params["max_chars"])
        if rule.block == "separator_trail":
            p = rule.params
            return separator_trails(lines, p["separators"], p["lead_separators"], p["max_chars"])
        if self._site is None or not host:
            return []
        site = self._site
        todo = range(len(lines)) if removed is None else [i for i, r in enumerate(removed) if r is None]
        return [i for i in todo if site_key(host, lines[i]) in site]  # hashing only lines still kept

    def analyse(self, text: str, host: str | None, all_verdicts: bool = False) -> Analysis:
        lines = text.split("\n")
        removed = self.classify(lines, host)
        kept = "\n".join(line for line, r in zip(lines, removed, strict=True) if r is None)
        return Analysis(lines, removed, kept, self.judge(kept, all_verdicts))

    def judge(self, text: str, all_verdicts: bool = False) -> list[Verdict]:
        """Document rules in file order; stops at the first failure unless all_verdicts."""
        view = DocView(text)
        verdicts = []
        for rule in self.rules.doc_rules:
            if not rule.applies(text):
                continue
            value = self.value(view, rule)
            verdicts.append(Verdict(rule, value, rule.fails(value)))
            if verdicts[-1].failed and not all_verdicts:
                break
        return verdicts

    def value(self, view: DocView, rule: DocRule) -> float:
        if not rule.words:
            return view.value(rule.metric)
        words = self.rules.words
        if rule.metric == "word_line_ratio":
            lines = [line for line in view.lines if line.strip()]
            return sum(words.match(line)[rule.words].hits > 0 for line in lines) / len(lines) if lines else 0.0
        if view.words is None:
            view.words = words.match(view.text)
        found = view.words[rule.words]
        if rule.metric == "word_char_ratio":
            return found.chars / len(view.text) if view.text else 0.0
        return found.hits * 1000 / len(view.text) if view.text else 0.0


_UNLIMITED = 1 << 60
_MEMO_SIZE = 1 << 20


def _combine(patterns: list[LineRule], limit: int) -> re.Pattern[str] | None:
    """The pattern rules that apply to lines of length <= limit, as one alternation in file order."""
    parts = [
        f"(?P<r{i}>{r.pattern.pattern})"  # type: ignore[union-attr]
        for i, r in enumerate(patterns)
        if (r.max_chars or _UNLIMITED) >= limit
    ]
    return re.compile("|".join(parts)) if parts else None


def _is_menu_like(s: str, max_chars: int) -> bool:
    return len(s) <= max_chars and not s.endswith(LINE_END_CHARS)


def short_runs(lines: list[str], min_run: int, max_chars: int) -> list[int]:
    """Runs of at least `min_run` consecutive short lines without a sentence ending: menus, tag
    clouds, spec tables, calendars. Prose lines end with 。！？ and break the run."""
    hits: list[int] = []
    run = 0
    for i, s in enumerate(lines):
        if len(s) <= max_chars and not s.endswith(LINE_END_CHARS):
            run += 1
            continue
        if run >= min_run:
            hits.extend(range(i - run, i))
        run = 0
    if run >= min_run:
        hits.extend(range(len(lines) - run, len(lines)))
    return hits


def separator_trails(lines: list[str], separators: str, lead_separators: str, max_chars: int) -> list[int]:
    """Breadcrumbs written one item per line: a line that is only a separator (`>`), or an arrow-like
    separator, a space and a short item (`> 審議会`), removes itself and the short items around it.
    Bullets such as `- 砂糖 大さじ1` are not trails: `-` only counts on a line of its own."""
    hits: list[int] = []
    starts = separators + lead_separators
    for i, s in enumerate(lines):
        if not s or s[0] not in starts:  # the fast path: almost no line starts with a separator
            continue
        lone = len(s) == 1 and s in separators
        lead = len(s) > 2 and s[0] in lead_separators and s[1] == " " and _is_menu_like(s, max_chars)
        if not (lone or lead):
            continue
        hits.append(i)
        hits.extend(j for j in (i - 1, i + 1) if 0 <= j < len(lines) and _is_menu_like(lines[j], max_chars))
    return hits
