"""Bad input is quarantined with file and line, never crashes a run, never loses other documents."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.readers import BadRecord, ReaderConfig, read_records
from cleaning.runner import Runner, RunOptions
from tests.conftest import NORMALIZE_ONLY, output_ids

GOOD = [
    {"id": f"g{i}", "text": f"これは{i}番目の正常な文書です。", "url": f"https://a.example.jp/{i}"} for i in range(5)
]


def jsonl(records: list[dict]) -> bytes:
    return b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in records)


def run(inputs: list[Path], out: Path, pipeline: Path = NORMALIZE_ONLY) -> tuple[dict, str]:
    log = io.StringIO()
    options = RunOptions([str(p) for p in inputs], out, use_ray=False, progress=False)
    summary = Runner(load_pipeline(pipeline), options, Console(file=log, width=200)).run()
    return summary, log.getvalue()


def quarantined(out: Path) -> list[dict]:
    files = sorted((out / "rejects" / "_input").glob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


BAD_LINES = [
    (b'{"id": "u", "text": "\xff\xfe broken"}\n', "input.invalid_utf8"),
    (b'{"id": "j", "text": "unterminated\n', "input.broken_json"),
    (b'{"id": "m", "body": "no text field"}\n', "input.missing_text"),
    (b'{"id": "n", "text": 42}\n', "input.missing_text"),
    (b'{"id": "e", "text": "   "}\n', "input.empty_text"),
    (b'["not", "an", "object"]\n', "input.not_an_object"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES, ids=[r for _, r in BAD_LINES])
def test_each_bad_record_is_quarantined_with_file_and_line(tmp_path: Path, line: bytes, reason: str) -> None:
    src = tmp_path / "in" / "crawl.jsonl"
    src.parent.mkdir()
    src.write_bytes(jsonl(GOOD[:2]) + line + jsonl(GOOD[2:]))
    summary, log = run([src], tmp_path / "out")
    assert f"crawl.jsonl:3: {reason.removeprefix('input.')}" in log
    rows = quarantined(tmp_path / "out")
    assert [(r["source"], r["line"], r["reject_reason"]) for r in rows] == [("crawl.jsonl", 3, reason)]
    assert rows[0]["text"], "the offending record itself is kept for inspection"
    kept, _ = output_ids(tmp_path / "out")
    assert sorted(kept) == [g["id"] for g in GOOD]
    assert summary["conservation"] == {"records_in": 6, "kept": 5, "rejected": 1}


def test_invalid_utf8_bytes_are_kept_visible(tmp_path: Path) -> None:
    src = tmp_path / "x.jsonl"
    src.write_bytes(b'{"text": "ok\xe3\x81"}\n')
    [item] = list(read_records(src, "x.jsonl", ReaderConfig()))
    assert isinstance(item, BadRecord) and "\\xe3\\x81" in item.raw


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    whole = gzip.compress(jsonl([{"id": f"t{i}", "text": "日本語の文書です。" * 50} for i in range(200)]))
    src = tmp_path / "cut.jsonl.gz"
    src.write_bytes(whole[: len(whole) // 2])
    other = tmp_path / "other.jsonl"
    other.write_bytes(jsonl(GOOD))
    summary, log = run([src, other], tmp_path / "out")
    assert "cut.jsonl.gz:" in log and "truncated_file" in log
    [row] = quarantined(tmp_path / "out")
    assert row["reject_reason"] == "input.truncated_file"
    kept, _ = output_ids(tmp_path / "out")
    read_before_cut = sum(1 for k in kept if k.startswith("t"))
    assert 0 < read_before_cut < 200
    assert all(g["id"] in kept for g in GOOD)
    c = summary["conservation"]
    assert c["records_in"] == c["kept"] + c["rejected"] == read_before_cut + 5 + 1


def test_a_plain_file_named_gz_is_read_and_a_corrupt_gzip_is_one_entry(tmp_path: Path) -> None:
    src = tmp_path / "plain.jsonl.gz"
    src.write_bytes(jsonl(GOOD) + b"this is not json\n")
    items = list(read_records(src, "plain.jsonl.gz", ReaderConfig()))
    assert [d.id for d in items[:5]] == [g["id"] for g in GOOD], "compression is told by the bytes, not the name"
    assert isinstance(items[5], BadRecord) and items[5].reason == "broken_json" and items[5].line == 6
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"\x1f\x8b" + b"garbage after a gzip magic number")
    [item] = list(read_records(bad, "bad.jsonl.gz", ReaderConfig()))
    assert isinstance(item, BadRecord) and item.reason in ("corrupt_file", "truncated_file")


def test_one_corrupt_parquet_row_group_keeps_the_others(tmp_path: Path) -> None:
    path = tmp_path / "groups.parquet"
    rows = [{"id": f"p{i}", "text": f"行{i}の本文です。" * 20} for i in range(30)]
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=10, compression="none")
    meta = pq.ParquetFile(path).metadata
    column = meta.row_group(1).column(1)  # the text column of the middle group
    data = bytearray(path.read_bytes())
    start = column.data_page_offset
    data[start : start + 64] = b"\xff" * 64  # break its page header
    path.write_bytes(bytes(data))
    items = list(read_records(path, "groups.parquet", ReaderConfig()))
    good = [i.id for i in items if not isinstance(i, BadRecord)]
    bad = [i for i in items if isinstance(i, BadRecord)]
    assert good == [f"p{i}" for i in (*range(10), *range(20, 30))]
    assert [b.line for b in bad] == list(range(11, 21)) and {b.reason for b in bad} == {"corrupt_row_group"}


def test_huge_document_is_quarantined_and_the_rest_survive(tmp_path: Path) -> None:
    huge = {"id": "big", "text": "あ" * (50 * 1_000_000 // 3 + 10)}  # a 50 MB document
    src = tmp_path / "big.jsonl"
    src.write_bytes(jsonl([GOOD[0], huge, *GOOD[1:]]))
    _, log = run([src], tmp_path / "out")
    assert "big.jsonl:2: too_large" in log
    [row] = quarantined(tmp_path / "out")
    assert row["reject_reason"] == "input.too_large" and row["line"] == 2
    kept, _ = output_ids(tmp_path / "out")
    assert sorted(kept) == [g["id"] for g in GOOD]


def test_line_longer_than_cap_is_skipped_without_reading_it_whole(tmp_path: Path) -> None:
    src = tmp_path / "long.jsonl"
    src.write_bytes(b'{"text": "' + b"a" * 3_000_000 + b'"}\n' + jsonl(GOOD[:1]))
    items = list(read_records(src, "long.jsonl", ReaderConfig(max_doc_mb=0.1)))
    assert isinstance(items[0], BadRecord) and items[0].reason == "too_large" and items[0].line == 1
    assert items[1].id == GOOD[0]["id"]


def test_missing_ids_are_generated_from_source_and_line(tmp_path: Path) -> None:
    src = tmp_path / "sub" / "noid.jsonl"
    src.parent.mkdir()
    src.write_bytes(b'{"text": "\xe4\xb8\x80"}\n\n{"text": "\xe4\xba\x8c", "title": "t"}\n')
    docs = list(read_records(src, "sub/noid.jsonl", ReaderConfig()))
    assert [d.id for d in docs] == ["sub/noid.jsonl:1", "sub/noid.jsonl:3"]
    assert json.loads(docs[1].fields["meta"]) == {"title": "t"}


def test_zstd_and_parquet_inputs_with_custom_fields(tmp_path: Path) -> None:
    records = [{"doc_id": f"z{i}", "content": f"本文{i}です。"} for i in range(3)]
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl(records)))
    pq.write_table(
        pa.Table.from_pylist([{"doc_id": "p1", "content": "パルケ"}, {"doc_id": "p2", "content": None}]),
        tmp_path / "b.parquet",
    )
    config = ReaderConfig(text_field="content", id_field="doc_id")
    zst = list(read_records(tmp_path / "a.jsonl.zst", "a", config))
    assert [d.id for d in zst] == ["z0", "z1", "z2"] and zst[0].text == "本文0です。"
    par = list(read_records(tmp_path / "b.parquet", "b", config))
    assert par[0].id == "p1" and isinstance(par[1], BadRecord) and par[1].reason == "missing_text"


def test_truncated_zstd_keeps_what_was_read_and_says_so(tmp_path: Path) -> None:
    whole = zstandard.ZstdCompressor().compress(
        jsonl([{"id": f"z{i}", "text": "日本語の文書です。" * 50} for i in range(300)])
    )
    src = tmp_path / "cut.jsonl.zst"
    src.write_bytes(whole[: len(whole) // 2])
    summary, log = run([src], tmp_path / "out")
    assert "cut.jsonl.zst:" in log and "truncated_file" in log
    [row] = quarantined(tmp_path / "out")
    assert row["reject_reason"] == "input.truncated_file" and "inside a frame" in row["reject_detail"]
    kept, _ = output_ids(tmp_path / "out")
    assert 0 < len(kept) < 300 and row["line"] == len(kept) + 1, "every record before the cut is kept"
    assert summary["conservation"] == {"records_in": len(kept) + 1, "kept": len(kept), "rejected": 1}


def test_more_encodings_and_line_ends_are_read(tmp_path: Path) -> None:
    """A BOM, lone CR line ends, several zstd frames, bz2 and xz: every record is read."""
    import bz2
    import lzma

    body = jsonl(GOOD)
    files = {
        "bom.jsonl": b"\xef\xbb\xbf" + body,
        "mac.jsonl": body.replace(b"\n", b"\r"),
        "frames.jsonl.zst": zstandard.ZstdCompressor().compress(body) * 2,
        "a.jsonl.bz2": bz2.compress(body),
        "a.jsonl.xz": lzma.compress(body),
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        items = list(read_records(path, name, ReaderConfig()))
        assert not [i for i in items if isinstance(i, BadRecord)], name
        want = [g["id"] for g in GOOD] * (2 if "frames" in name else 1)
        assert [d.id for d in items] == want, name


def test_a_deeply_nested_side_field_does_not_stop_the_run(tmp_path: Path) -> None:
    side = '{"a":' * 300 + "1" + "}" * 300  # orjson reads it but cannot write it back
    src = tmp_path / "deep.jsonl"
    src.write_bytes(
        jsonl(GOOD[:2]) + b'{"id": "deep", "text": "\xe6\x9c\xac\xe6\x96\x87", "side": ' + side.encode() + b"}\n"
    )
    summary, _ = run([src], tmp_path / "out")
    kept, _ = output_ids(tmp_path / "out")
    assert sorted(kept) == ["deep", "g0", "g1"]
    assert summary["conservation"] == {"records_in": 3, "kept": 3, "rejected": 0}


def test_a_file_that_cannot_be_opened_fails_its_task_and_is_read_on_the_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permission denied is not bad data: quarantining it would be remembered after the file is fixed."""
    import cleaning.readers
    from cleaning.runner import RunFailed

    locked, other = tmp_path / "in" / "locked.jsonl", tmp_path / "in" / "other.jsonl"
    locked.parent.mkdir()
    locked.write_bytes(jsonl(GOOD[:2]))
    other.write_bytes(jsonl(GOOD[2:]))
    real = cleaning.readers.open_input

    def denied(path: Path) -> Any:
        if path.name == "locked.jsonl":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(cleaning.readers, "open_input", denied)
    with pytest.raises(RunFailed, match=r"locked\.jsonl"):
        run([locked, other], tmp_path / "out")
    assert not quarantined(tmp_path / "out"), "nothing was quarantined for a file that could not be opened"
    monkeypatch.setattr(cleaning.readers, "open_input", real)  # the file is fixed
    summary, _ = run([locked, other], tmp_path / "out")
    kept, _ = output_ids(tmp_path / "out")
    assert sorted(kept) == [g["id"] for g in GOOD]
    assert summary["conservation"] == {"records_in": 5, "kept": 5, "rejected": 0}
