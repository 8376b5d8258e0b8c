"""normalize: the text every later rule sees."""

from __future__ import annotations

import unicodedata
from collections import Counter

import pytest

from cleaning.document import Doc, Reject
from cleaning.pipeline import build_config
from cleaning.stages.normalize import Normalize, NormalizeConfig


def norm(text: str, **options: object) -> Doc | Reject:
    stage = Normalize(build_config(NormalizeConfig, dict(options), "test"))
    return stage.apply(Doc("d", text, {}), Counter())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ＡＢＣ１２３", "ABC123"),  # full-width ASCII folds to ASCII
        ("ｶﾀｶﾅ", "カタカナ"),  # half-width katakana becomes full-width
        ("ｶﾞｷﾞ", "ガギ"),  # with its voiced marks joined
        ("一行目\r\n二行目\r三行目", "一行目\n二行目\n三行目"),
        ("ゼロ\u200b幅\ufeff文字\u00ad", "ゼロ幅文字"),
        ("ベル\u0007文字", "ベル文字"),
        ("全角\u3000\u3000スペース  と\tタブ", "全角 スペース と タブ"),
        ("  前後の空白  \n\n\n   \n本文", "前後の空白\n本文"),
        ("段落\u2028区切り", "段落\n区切り"),
    ],
)
def test_normalize_rewrites(raw: str, expected: str) -> None:
    out = norm(raw)
    assert isinstance(out, Doc)
    assert out.text == expected


def test_whitespace_only_document_is_rejected_with_reason() -> None:
    out = norm("\u200b \u3000\n\r\n\ufeff")
    assert isinstance(out, Reject)
    assert out.reason == "normalize.empty"


def test_options_switch_steps_off() -> None:
    out = norm("ＡＢＣ\n\n x  y ", unicode_form="none", drop_empty_lines=False, collapse_spaces=False)
    assert isinstance(out, Doc)
    assert out.text == "ＡＢＣ\n\n x  y "


def test_nfc_keeps_full_width() -> None:
    out = norm("ＡＢＣ ｶﾀｶﾅ", unicode_form="NFC")
    assert isinstance(out, Doc) and out.text == "ＡＢＣ ｶﾀｶﾅ"


def test_counters_record_what_was_removed() -> None:
    stage = Normalize(NormalizeConfig())
    result = stage.process([Doc("a", "x\u200b\u200by\n\n\nz", {}), Doc("b", " \n ", {})])
    assert [d.id for d in result.kept] == ["a"]
    assert [r.doc.id for r in result.rejected] == ["b"]
    assert result.counters["invisible_chars_removed"] == 2
    assert result.counters["empty_lines_removed"] == 2 + 2


def test_unknown_form_is_a_config_error() -> None:
    from cleaning.errors import CleaningError

    with pytest.raises(CleaningError, match="unicode_form"):
        build_config(NormalizeConfig, {"unicode_form": "NFX"}, "normalize")


def test_line_wise_normalisation_equals_whole_text(shared_data) -> None:
    import gzip
    import json

    from cleaning.stages.normalize import _normalize_lines

    with gzip.open(shared_data / "web" / "cc-main-2023-50_ja_pages.jsonl.gz", "rt") as f:
        texts = [json.loads(line)["text"] for line, _ in zip(f, range(400), strict=False)]
    for text in texts:
        assert _normalize_lines("NFKC", text) == unicodedata.normalize("NFKC", text)


def test_long_runs_of_combining_marks_are_cut_before_normalising() -> None:
    """Normalisation is quadratic in a run of marks of mixed classes (zalgo text); such runs are cut."""

    stage = Normalize(NormalizeConfig(max_combining_marks=8))
    counters: Counter[str] = Counter()
    zalgo = "a" + "\u0301\u0316" * 50_000
    lines = stage.lines(zalgo + "\nか\u3099きです。e\u0301", counters)
    decomposed = unicodedata.normalize("NFD", lines[0])
    assert len(decomposed) == 1 + 8 and decomposed[0] == "a", "the letter stays, with 8 of its marks"
    assert lines[1] == "がきです。é", "ordinary combining marks still compose"
    assert counters["combining_marks_removed"] == 100_000 - 8


def test_many_marks_in_short_runs_are_not_cut() -> None:
    """Only runs longer than the limit are cut: more marks than the limit in all, spread over short
    runs (dakuten after every kana) or one run of exactly the limit, stay and compose."""
    stage = Normalize(NormalizeConfig(max_combining_marks=8))
    counters: Counter[str] = Counter()
    lines = stage.lines("か\u3099" * 40 + "\n" + "a" + "\u0301" * 8, counters)
    assert lines[0] == "が" * 40
    assert lines[1] == unicodedata.normalize("NFKC", "a" + "\u0301" * 8)
    assert counters["combining_marks_removed"] == 0
