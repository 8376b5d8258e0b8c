"""Every rule's own examples, and the rule loader's errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from cleaning.errors import CleaningError
from cleaning.rules.engine import RulesEngine
from cleaning.rules.examples import Example, fires, iter_examples
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, load_rules

RULES = load_rules()
ENGINE = RulesEngine(RULES)
EXAMPLES = list(iter_examples(RULES))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.label for e in EXAMPLES])
def test_rule_example(example: Example) -> None:
    fired, measured = fires(RULES, ENGINE, example)
    assert fired == example.expected, f"{example.rule_id} on {example.text[:80]!r}: {measured}"


def test_every_rule_has_both_kinds_of_example() -> None:
    for rule_id in {e.rule_id for e in EXAMPLES}:
        kinds = {e.expected for e in EXAMPLES if e.rule_id == rule_id}
        assert kinds == {True, False}, rule_id


def copy_rules(tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(DEFAULT_RULES_DIR, tmp_path / "rules"))


def test_a_new_pattern_rule_needs_no_code(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    text = (rules_dir / "lines.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "line_rules:\n",
        "line_rules:\n  - id: test.weather\n    description: test rule\n    pattern: '天気予報.*'\n"
        "    examples: {match: [天気予報です], no_match: [今日の天気]}\n",
        1,
    )
    (rules_dir / "lines.yaml").write_text(text, encoding="utf-8")
    engine = RulesEngine(load_rules(rules_dir))
    assert engine.classify(["天気予報の時間です", "今日は晴れです。"], None) == ["test.weather", None]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("pattern: '(?:本文へ", "pattern: '(?:本文へ("), "bad pattern"),
        (("  - id: widget.login\n", "  - id: widget.share\n"), "rule ids used twice"),
        (("block: {type: short_run, min_run: 6, max_chars: 20}", "block: {type: short_run, min_run: 6}"), "takes"),
    ],
)
def test_broken_rule_files_are_clear_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "lines.yaml"
    text = path.read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(CleaningError, match=message):
        load_rules(rules_dir)


def test_unknown_metric_and_missing_examples(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "documents.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("metric: chars\n", "metric: charz\n", 1))
    with pytest.raises(CleaningError, match="unknown metric 'charz'"):
        load_rules(rules_dir)


def test_disable_and_override() -> None:
    rules = load_rules(disable=["menu.block"], overrides={"doc.too_short": {"min": 5}})
    assert "menu.block" not in {r.id for r in rules.line_rules}
    assert next(r for r in rules.doc_rules if r.id == "doc.too_short").min == 5
    with pytest.raises(CleaningError, match="unknown rule ids"):
        load_rules(disable=["no.such.rule"])


def test_a_piece_of_a_sentence_between_kept_lines_stays() -> None:
    import numpy as np

    from cleaning.rules.engine import model_removals

    lines = ["詳しくは", "こちら", "をご覧ください。", "関連記事の見出し", "本文の続きです。"]
    free = np.ones(5, dtype=bool)
    p = np.array([0.1, 0.9, 0.1, 0.9, 0.1])
    assert model_removals(lines, free, p, 0.5, 30).tolist() == [False, False, False, True, False], (
        "a link split out of a sentence stays; a line after a finished sentence goes"
    )
    assert model_removals(lines, free, p, 0.5, 0).tolist() == [False, True, False, True, False]
    assert model_removals(lines, free, p, 0.5, 2).tolist() == [False, True, False, True, False], "too long"
