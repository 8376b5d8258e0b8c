"""WARC and WET input: pages in any Japanese charset become documents with URL, date and record id;
everything else is quarantined with a reason, and a file cut short keeps what came before the cut."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from cleaning.errors import CleaningError
from cleaning.html_text import decode_page
from cleaning.pipeline import load_pipeline
from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.runner import Runner, RunOptions
from tests.conftest import NORMALIZE_ONLY, PIPELINE, output_ids
from tests.warcs import Page, html, write_warc, write_wet

PROSE = {
    "utf8": ["霞野市の春祭りは毎年四月に開かれます。", "今年は三日間で約二万人が訪れました。"],
    "sjis": [
        "商店街の①番地にある老舗の和菓子店が、創業百年を迎えました。",
        "店主は三代目で、昔ながらの製法を守っています。",
    ],
    "euc": ["図書館では来月から開館時間を一時間延長します。", "平日の夜にも本を借りられるようになります。"],
    "latin": ["駅前の駐輪場が改修工事のため一時閉鎖されます。", "期間中は市役所横の臨時駐輪場をご利用ください。"],
    "guess": [
        "小学校の運動会は雨のため来週の土曜日に延期となりました。",
        "お弁当の準備などについては改めてお知らせします。",
    ],
}


def japanese_pages() -> list[Page]:
    """One page per way a Japanese site declares (or misdeclares) its charset."""
    return [
        Page("https://a.example.jp/utf8", html("春祭り", PROSE["utf8"]).encode(), "text/html; charset=utf-8"),
        Page(
            "https://a.example.jp/sjis", html("和菓子店", PROSE["sjis"]).encode("cp932"), "text/html; charset=Shift_JIS"
        ),
        Page(
            "https://a.example.jp/euc",
            html("図書館", PROSE["euc"], meta_charset="EUC-JP").encode("euc_jp"),
            "text/html",
        ),
        # a server default of ISO-8859-1 in front of a Shift_JIS page: the meta tag is right
        Page(
            "https://a.example.jp/latin",
            html("駐輪場", PROSE["latin"], meta_charset="Shift_JIS").encode("cp932"),
            "text/html; charset=ISO-8859-1",
        ),
        # no declaration anywhere: uchardet's guess
        Page("https://a.example.jp/guess", html("運動会", PROSE["guess"] * 3).encode("euc_jp"), "text/html"),
    ]


def read(path: Path, **config: object) -> list[Doc | BadRecord]:  # noqa: F821
    return list(read_records(path, path.name, ReaderConfig(**config)))  # type: ignore[arg-type]


def test_japanese_pages_in_every_charset_become_documents_with_url_date_and_record_id(tmp_path: Path) -> None:
    warc = write_warc(tmp_path / "crawl.warc.gz", japanese_pages())
    docs = read(warc.path)
    assert not [d for d in docs if isinstance(d, BadRecord)]
    assert [(d.fields["line"], d.id) for d in docs] == warc.responses  # record numbers count every record
    charsets = {}
    for doc, key in zip(docs, PROSE, strict=True):
        lines = doc.text.split("\n")
        for sentence in PROSE[key]:
            assert sentence in lines, (key, lines)  # one block per line, decoded right
        assert "\ufffd" not in doc.text
        meta = json.loads(doc.fields["meta"])
        assert doc.fields["url"] == f"https://a.example.jp/{key}"
        assert meta["timestamp"] == "2023-11-28T10:19:01Z"
        assert meta["warc_record_id"] == doc.id and doc.id.startswith("urn:uuid:")
        charsets[key] = meta["charset"]
    assert charsets == {"utf8": "utf-8", "sjis": "cp932", "euc": "euc_jp", "latin": "cp932", "guess": "euc_jp"}


@pytest.mark.parametrize("extractor", ["resiliparse-all", "resiliparse", "trafilatura"])
def test_each_extractor_keeps_the_prose_and_main_content_drops_the_menu(tmp_path: Path, extractor: str) -> None:
    warc = write_warc(tmp_path / "crawl.warc", japanese_pages()[:1], gzip=False)
    [doc] = read(warc.path, extractor=extractor)
    lines = doc.text.split("\n")
    assert all(s in lines for s in PROSE["utf8"])
    if extractor != "trafilatura":  # trafilatura falls back to the whole of so small a page
        assert ("お問い合わせ" in lines) == (extractor == "resiliparse-all")
    assert "tracking" not in doc.text  # scripts are never text


def test_pages_that_are_not_japanese_documents_are_quarantined_with_a_reason(tmp_path: Path) -> None:
    english = "The spring festival of the city is held every April and draws many visitors from abroad. " * 3
    chinese = "本市春节庙会每年四月举行，今年三天共吸引约两万名游客，各地商户积极参与，场面十分热闹。" * 2
    pages = [
        *japanese_pages()[:2],
        Page("https://b.example.com/en", f"<html><body><p>{english}</p></body></html>".encode()),
        Page("https://b.example.cn/zh", f"<html><body><h1>庙会</h1><p>{chinese}</p></body></html>".encode()),
        Page("https://a.example.jp/gone", b"<html><body>Not Found</body></html>", "text/html", "404 Not Found"),
        Page("https://a.example.jp/logo.png", b"\x89PNG\r\n\x1a\n" + bytes(200), "image/png"),
        Page("https://a.example.jp/empty", b"<html><head><script>x()</script></head><body></body></html>"),
    ]
    warc = write_warc(tmp_path / "in" / "crawl.warc.gz", pages)
    log = io.StringIO()
    options = RunOptions([str(warc.path)], tmp_path / "out", use_ray=False, progress=False)
    summary = Runner(load_pipeline(NORMALIZE_ONLY), options, Console(file=log, width=200)).run()

    rows = [
        r
        for f in sorted((tmp_path / "out" / "rejects" / "_input").glob("*.parquet"))
        for r in pq.read_table(f).to_pylist()
    ]
    numbers = [n for n, _ in warc.responses]
    assert [(r["line"], r["reject_reason"]) for r in rows] == [
        (numbers[2], "input.not_japanese"),
        (numbers[3], "input.not_japanese"),
        (numbers[4], "input.http_status"),
        (numbers[5], "input.not_html"),
        (numbers[6], "input.no_text"),
    ]
    assert "https://b.example.cn/zh" in rows[1]["reject_detail"] and "HTTP 404" in rows[2]["reject_detail"]
    assert len(rows[0]["text"]) <= 300  # a preview, not the whole page
    kept, rejected = output_ids(tmp_path / "out")
    assert sum(kept.values()) == 2 and sum(rejected.values()) == 5
    assert summary["conservation"] == {"records_in": 7, "kept": 2, "rejected": 5}
    assert "not_japanese" not in log.getvalue()  # left out by design: counted, not printed as bad input


def test_a_cut_warc_keeps_the_pages_before_the_cut_and_names_the_record(tmp_path: Path) -> None:
    warc = write_warc(tmp_path / "crawl.warc.gz", japanese_pages())
    data = warc.path.read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: int(len(data) * 0.7)])
    items = read(cut)
    docs = [d for d in items if not isinstance(d, BadRecord)]
    bad = [d for d in items if isinstance(d, BadRecord)]
    assert 2 <= len(docs) < 5 and [d.id for d in docs] == [i for _, i in warc.responses[: len(docs)]]
    assert [b.reason for b in bad] == ["truncated_file"]

    plain = write_warc(tmp_path / "crawl.warc", japanese_pages()[:2], gzip=False)
    raw = plain.path.read_bytes()
    plain.path.write_bytes(raw[: raw.rindex(PROSE["sjis"][1].encode("cp932"))])  # inside the last page's body
    items = read(plain.path)
    assert [type(i).__name__ for i in items] == ["Doc", "BadRecord"]
    assert items[1].reason == "truncated_file" and items[1].line == plain.responses[1][0]  # type: ignore[union-attr]


def test_records_over_max_page_mb_are_quarantined_unread(tmp_path: Path) -> None:
    warc = write_warc(tmp_path / "crawl.warc.gz", japanese_pages()[:3])
    items = read(warc.path, max_page_mb=0.0002)  # 200 bytes: smaller than every page
    assert [(i.line, i.reason) for i in items] == [(n, "too_large") for n, _ in warc.responses]  # type: ignore[union-attr]


def test_a_file_that_is_not_a_warc_is_one_quarantine_entry(tmp_path: Path) -> None:
    junk = tmp_path / "junk.warc.gz"
    junk.write_bytes(gzip.compress(b"this is not a WARC file\n" * 20))
    [bad] = read(junk)
    assert isinstance(bad, BadRecord) and bad.reason == "corrupt_file" and bad.line == 1


def test_wet_conversion_records_are_read_as_text(tmp_path: Path) -> None:
    texts = {
        "https://c.example.jp/1": (
            "霞野市のお知らせ\n  市民プールは七月一日から営業を始めます。\n\n営業時間は午前九時から午後五時までです。"
        ),
        "https://c.example.com/2": "This page is in English and should not be kept as Japanese text at all. " * 2,
    }
    ids = write_wet(tmp_path / "crawl.warc.wet.gz", texts)
    first, second = read(tmp_path / "crawl.warc.wet.gz")
    assert first.id == ids[0] and first.fields["url"] == "https://c.example.jp/1"  # type: ignore[union-attr]
    assert first.text.split("\n")[1] == "市民プールは七月一日から営業を始めます。"  # type: ignore[union-attr]
    assert isinstance(second, BadRecord) and second.reason == "not_japanese"


def test_charset_decoding_prefers_valid_utf8_then_the_reading_that_is_japanese() -> None:
    assert decode_page("<p>図書館のお知らせ</p>".encode(), "shift_jis").charset == "utf-8"  # a stale declaration
    text = "<p>ありがとうございます。こんにちは、おしらせです。</p>"
    # EUC-JP bytes declared Shift_JIS decode as Shift_JIS without an error, into half-width katakana
    assert text.encode("euc_jp").decode("cp932") != text
    euc = decode_page(text.encode("euc_jp"), "Shift_JIS")
    assert (euc.text, euc.charset, euc.replaced) == (text, "euc_jp", False)


def test_an_unknown_extractor_is_a_clear_error() -> None:
    with pytest.raises(CleaningError, match="extractor must be one of resiliparse-all, resiliparse, trafilatura"):
        load_pipeline(PIPELINE, ["input.extractor=boilerpipe"])
