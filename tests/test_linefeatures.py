"""The line model's list features, and that its features never see the page's size."""

from __future__ import annotations

import numpy as np

from cleaning.rules.linefeatures import DocLines, Keywords, feature_names, line_features

QUESTIONS = [
    "関連する質問",
    "Q:転職回数が多くて転職できるか不安です",
    "Q:志望動機を書くコツは?",
    "Q:第二新卒の転職について",
    "Q:最終面接で気を付けることは?",
]
PROSE = [
    "今日は朝から雨が降っていたので、家で本を読んで過ごした。",
    "午後には雨も上がり、近所の公園まで散歩に出かけた。",
]


def _features(*pages: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    keywords = Keywords({})
    docs = [DocLines(lines, "example.jp", [0] * len(lines)) for lines in pages]
    x = line_features(docs, keywords)
    return x, {name: i for i, name in enumerate(feature_names(keywords.names))}


def test_start_run_counts_lines_opening_with_the_same_character() -> None:
    x, col = _features(QUESTIONS + PROSE)
    assert x[:, col["start_run"]].tolist() == [1, 4, 4, 4, 4, 1, 1]


def test_title_run_counts_unfinished_or_question_lines_not_sentences() -> None:
    x, col = _features(QUESTIONS + PROSE)
    # 関連する質問 and the four questions are title-like (6-60 characters, no period); prose is not
    assert x[:, col["title_run"]].tolist() == [5, 5, 5, 5, 5, 0, 0]


def test_runs_stop_at_document_boundaries() -> None:
    x, col = _features(QUESTIONS[1:3], QUESTIONS[3:])
    assert x[:, col["start_run"]].tolist() == [2, 2, 2, 2]
    assert x[:, col["title_run"]].tolist() == [2, 2, 2, 2]


def test_a_line_s_features_do_not_grow_with_the_page() -> None:
    """Appending far-away lines changes only the relative-position features of the first lines."""
    menu = [f"メニュー{i}" for i in range(200)]
    page = PROSE + ["", *QUESTIONS] + [""] * 20  # beyond the widest neighbour window of the first lines
    small, col = _features(page)
    large, _ = _features(page + menu)
    relative = {col["rel_index"], col["rel_chars"], col["doc_prose_share"]}
    others = [i for i in range(small.shape[1]) if i not in relative]
    assert "doc_chars" not in col and "doc_lines" not in col
    np.testing.assert_array_equal(small[:2, others], large[:2, others])
