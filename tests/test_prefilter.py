"""The literal prefilter in front of the line patterns may skip a pattern only where it cannot match:
the rule a line gets must be the one trying every pattern in order gives."""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from pathlib import Path

from cleaning.rules.prefilter import PatternSet, necessary_substrings
from cleaning.rules.ruleset import load_rules

UNLIMITED = 1 << 60


def first_by_brute_force(patterns: list[re.Pattern[str]], limits: list[int], line: str) -> int | None:
    return next((i for i, p in enumerate(patterns) if len(line) <= limits[i] and p.fullmatch(line)), None)


def project_patterns() -> tuple[list[re.Pattern[str]], list[int], list[str]]:
    rules = [r for r in load_rules().line_rules if r.pattern is not None]
    examples = [s for r in rules for s in [*r.match, *r.no_match]]
    return [r.pattern for r in rules], [r.max_chars or UNLIMITED for r in rules], examples  # type: ignore[misc]


def test_necessary_substrings_come_from_the_parse_tree() -> None:
    # of the texts a match must hold, the longest (casefolded) are checked
    assert necessary_substrings(re.compile(r"(?:ホーム|TOP)\s*>\s*.+")) == frozenset({"ホーム", "top"})
    assert necessary_substrings(re.compile(r".+\s*>\s*.+")) == frozenset({">"})
    assert necessary_substrings(re.compile(r"続きを読む|Read more")) == frozenset({"続きを読む", "read more"})
    # every alternative must bring some text; one that needs none leaves the pattern unfiltered
    assert necessary_substrings(re.compile(r"続きを読む|.{1,5}")) is None
    assert necessary_substrings(re.compile(r".*")) is None
    # under IGNORECASE, i/I also match İ and ı (whose casefolds differ), so they end a factor
    assert necessary_substrings(re.compile(r".*(?i:copyright).*")) == frozenset({"copyr"})
    # a bounded repeat of text contributes that text; an optional part contributes nothing on its own
    assert necessary_substrings(re.compile(r"(?:PDF)?\d+(?:KB|MB)")) == frozenset({"kb", "mb"})


def test_case_folded_lines_still_reach_their_pattern() -> None:
    patterns = [re.compile(r".*(?i:copyright|all rights reserved).*"), re.compile(r"(?i:page\s*top)")]
    ps = PatternSet(patterns, [200, 40])
    for line in ["COPYRIGHT 2023", "CopyRİght 2023 (dotted capital I)", "all rights reſerved", "Page Top", "PAGE TOP"]:
        assert ps.first_match(line) == first_by_brute_force(patterns, [200, 40], line) is not None, line
    assert ps.first_match("本日は晴天なり。") is None


def test_the_first_pattern_in_file_order_wins_and_line_limits_apply() -> None:
    patterns = [re.compile(r"コメント.*"), re.compile(r".*コメント"), re.compile(r"コメント")]
    ps = PatternSet(patterns, [10, UNLIMITED, UNLIMITED])
    assert ps.first_match("コメント") == 0
    assert ps.first_match("長い前置きのあとのとても長い行ですが最後はコメント") == 1
    assert ps.first_match("コメントで始まり、十文字を超える長い行") is None


def test_the_project_rules_give_the_same_rule_as_trying_every_pattern(shared_data: Path) -> None:
    patterns, limits, examples = project_patterns()
    ps = PatternSet(patterns, limits)
    lines = set(examples)
    with gzip.open(shared_data / "web" / "cc-main-2023-50_ja_pages.jsonl.gz", "rt", encoding="utf-8") as f:
        for row in f:
            text = unicodedata.normalize("NFKC", json.loads(row)["text"])
            lines.update(s.strip() for s in text.split("\n"))
    matched = 0
    for line in lines:
        expected = first_by_brute_force(patterns, limits, line)
        assert ps.first_match(line) == expected, line
        matched += expected is not None
    assert len(lines) > 100_000 and matched > 1_000  # the crawl exercises the patterns, not only their absence
