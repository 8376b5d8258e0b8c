"""A hostile input corpus and what a run must make of it, record by record.

`make_hostile_corpus` writes a folder of files with everything input can throw at the pipeline:
broken and truncated compression, byte-order marks, old-Mac line ends, invalid UTF-8, broken JSON,
wrong types, empty, huge and zalgo documents, NUL bytes, lone surrogates, deep nesting, duplicate
ids, a corrupt Parquet row group, unsupported files and a symlink loop. Good records carry texts of
the bundled sample corpus. It returns, for every record written, where it must end up: kept or
rejected by some stage (`None`), or quarantined at ingest with a given reason. `check_run` then
compares a finished run with that, so no readable record can be lost inside a whole-file reject.
"""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from tests.conftest import SAMPLE

MAX_DOC_MB = 0.02  # the run is given this, so "huge" stays small: 20 KB of text


@dataclass
class Expected:
    """Per input file: the ids that must come out (kept or rejected by a stage) and the input
    rejects by line with their reason; files that must be skipped, and at which line a file must
    report a cut (truncated or corrupt, after its readable records)."""

    ids: dict[str, list[str]] = field(default_factory=dict)
    rejects: dict[str, dict[int, str]] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    def good(self, source: str, doc_id: str) -> None:
        self.ids.setdefault(source, []).append(doc_id)

    def bad(self, source: str, line: int, reason: str) -> None:
        self.rejects.setdefault(source, {})[line] = f"input.{reason}"


def sample_texts(n: int) -> list[str]:
    texts = []
    for path in sorted(SAMPLE.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [t for line in f if (t := json.loads(line).get("text", "")).strip()]
    return [texts[i % len(texts)] for i in range(n)]


class _Lines:
    """Lines of one JSONL file, each noted in `expected` as good (by id) or bad (by reason)."""

    def __init__(self, source: str, expected: Expected, texts: list[str]) -> None:
        self.source, self.expected, self.texts = source, expected, texts
        self.lines: list[bytes] = []

    def good(self, doc_id: str, **extra: Any) -> None:
        record = {"id": doc_id, "text": self.texts.pop(), **extra}
        self.lines.append(json.dumps(record, ensure_ascii=False).encode())
        self.expected.good(self.source, doc_id)

    def good_raw(self, raw: bytes, doc_id: str) -> None:
        self.lines.append(raw)
        self.expected.good(self.source, doc_id)

    def bad(self, raw: bytes, reason: str) -> None:
        self.lines.append(raw)
        self.expected.bad(self.source, len(self.lines), reason)

    def blank(self) -> None:
        self.lines.append(b"   ")  # not a record: counted nowhere, but it takes a line number

    def data(self, end: bytes = b"\n") -> bytes:
        return end.join(self.lines) + end


def make_hostile_corpus(folder: Path, good_per_file: int = 6) -> Expected:
    folder.mkdir(parents=True, exist_ok=True)
    expected = Expected()
    texts = sample_texts(good_per_file * 12 + 40)

    # 1. one plain file with a bad record of every kind among good ones
    f = _Lines("mixed.jsonl", expected, texts)
    f.good("m-0")
    f.bad(b'{"id": "m-broken", "text": "\xe6\x96\x87\xe6\x9b\xb8', "broken_json")
    f.bad(b'["an", "array"]', "not_an_object")
    f.bad(b'{"id": "m-notext", "body": "\xe6\x9c\xac\xe6\x96\x87"}', "missing_text")
    f.bad(b'{"id": "m-null", "text": null}', "missing_text")
    f.bad(b'{"id": "m-number", "text": 42}', "missing_text")
    f.bad(b'{"id": "m-empty", "text": ""}', "empty_text")
    f.bad(b'{"id": "m-blank", "text": " \\u3000 \\n "}', "empty_text")
    f.bad(b'{"id": "m-utf8", "text": "\xff\xfe bad bytes"}', "invalid_utf8")
    f.bad(json.dumps({"id": "m-huge", "text": "長" * int(MAX_DOC_MB * 1e6)}).encode(), "too_large")
    f.bad(b'{"id": "m-longline", "text": "' + b"x" * int(MAX_DOC_MB * 1e6 * 6 + 70_000) + b'"}', "too_large")
    f.blank()
    f.good("m-1")
    f.good_raw(json.dumps({"id": "m-zalgo", "text": texts.pop() + "a" + "\u0301\u0300" * 2500}).encode(), "m-zalgo")
    f.good_raw(json.dumps({"id": "m-nul", "text": "NUL\u0000の入った文書です。" + texts.pop()}).encode(), "m-nul")
    escaped = json.dumps(texts.pop(), ensure_ascii=False)[1:-1].encode()
    f.good_raw(b'{"id": "m-surrogate", "text": "\\ud800 lone surrogate ' + escaped + b'"}', "m-surrogate")
    f.good_raw(json.dumps({"id": "m-deep", "text": texts.pop(), "meta": _nested(300)}).encode(), "m-deep")
    f.good("m-dup")
    f.good("m-dup")  # the same id twice: both are documents
    f.good_raw(json.dumps({"id": 7, "text": texts.pop()}).encode(), "7")
    f.good_raw(json.dumps({"text": texts.pop()}).encode(), f"mixed.jsonl:{len(f.lines) + 1}")
    for i in range(2, good_per_file):
        f.good(f"m-{i}")
    (folder / f.source).write_bytes(f.data(b"\r\n"))  # CRLF line ends, too

    # 2. a byte-order mark, lone-CR line ends, and no newline at the end
    f = _Lines("bom.jsonl", expected, texts)
    for i in range(good_per_file):
        f.good(f"bom-{i}")
    (folder / f.source).write_bytes(b"\xef\xbb\xbf" + f.data())
    f = _Lines("oldmac.jsonl", expected, texts)
    for i in range(good_per_file):
        f.good(f"cr-{i}")
    (folder / f.source).write_bytes(f.data(b"\r").rstrip(b"\r"))

    # 3. compression: cut short (gzip, zstd), mislabelled, garbage, bz2 and xz
    for suffix, compress in ((".gz", gzip.compress), (".zst", zstandard.ZstdCompressor().compress)):
        f = _Lines(f"cut.jsonl{suffix}", expected, texts)
        for i in range(good_per_file):
            f.good(f"cut{suffix}-{i}")
        whole = f.lines[:]
        # a last record of 300 KB of varied kana, so it spans compressed blocks and can be cut inside
        lost = "".join(chr(0x3041 + (i * 7919) % 83) for i in range(100_000))
        f.lines.append(json.dumps({"id": "lost", "text": lost}, ensure_ascii=False).encode())
        data = compress(f.data())
        kept_bytes = len(b"\n".join(whole)) + 1
        cut = _cut_point(data, kept_bytes)  # inside the last record, after every whole one
        assert kept_bytes <= len(_decompress_prefix(data[:cut])) < len(f.data())
        (folder / f.source).write_bytes(data[:cut])
        expected.bad(f.source, good_per_file + 1, "truncated_file")
    f = _Lines("plain_named.jsonl.gz", expected, texts)
    for i in range(good_per_file):
        f.good(f"plain-{i}")
    (folder / f.source).write_bytes(f.data())
    (folder / "garbage.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00" + os.urandom(512))
    expected.bad("garbage.jsonl.gz", 1, "corrupt_file")
    for suffix, compress in ((".bz2", bz2.compress), (".xz", lzma.compress)):
        f = _Lines(f"packed.jsonl{suffix}", expected, texts)
        for i in range(good_per_file):
            f.good(f"packed{suffix}-{i}")
        (folder / f.source).write_bytes(compress(f.data()))

    # 4. Parquet: one corrupt row group among good ones
    rows = [{"id": f"pq-{i}", "text": texts.pop()} for i in range(3 * good_per_file)]
    path = folder / "groups.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=good_per_file, compression="none")
    column = pq.ParquetFile(path).metadata.row_group(1).column(1)
    data = bytearray(path.read_bytes())
    data[column.data_page_offset : column.data_page_offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    for i, row in enumerate(rows, 1):
        if good_per_file < i <= 2 * good_per_file:
            expected.bad("groups.parquet", i, "corrupt_row_group")
        else:
            expected.good("groups.parquet", row["id"])

    # 5. files and folders that are not input: said once, never a crash
    (folder / "empty.jsonl").write_bytes(b"")
    (folder / "notes.txt").write_text("not input\n")
    (folder / "nested").mkdir()
    (folder / "nested" / "loop").symlink_to("..", target_is_directory=True)
    expected.skipped = ["notes.txt"]
    return expected


def _nested(depth: int) -> Any:
    value: Any = "底"
    for _ in range(depth):
        value = {"d": value}
    return value


def _cut_point(data: bytes, kept_bytes: int) -> int:
    """A length of the compressed stream that decompresses to at least the whole records but not
    the whole file: found by bisection on what each prefix yields."""
    low, high = 1, len(data) - 1
    while low < high:
        mid = (low + high) // 2
        if len(_decompress_prefix(data[:mid])) >= kept_bytes:
            high = mid
        else:
            low = mid + 1
    return low + (len(data) - low) // 2


def _decompress_prefix(prefix: bytes) -> bytes:
    if prefix[:2] == b"\x1f\x8b":
        out = io.BytesIO()
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(prefix)) as g:
                while chunk := g.read(1 << 16):
                    out.write(chunk)
        except (EOFError, OSError):
            pass
        return out.getvalue()
    reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(prefix))
    out = io.BytesIO()
    try:
        while chunk := reader.read(1 << 16):
            out.write(chunk)
    except zstandard.ZstdError:
        pass
    return out.getvalue()


def check_run(out: Path, expected: Expected) -> None:
    """Every record written is accounted for exactly as expected; raises AssertionError otherwise."""
    summary = json.loads((out / "summary.json").read_text())
    c = summary["conservation"]
    assert c["records_in"] == c["kept"] + c["rejected"]
    final = Path(summary["final_shards"])
    kept = Counter(i for p in final.glob("*.parquet") for i in pq.read_table(p, columns=["id"])["id"].to_pylist())
    stage_rejects: Counter[str] = Counter()
    input_rejects: dict[str, dict[int, str]] = {}
    for stage_dir in (out / "rejects").iterdir():
        for p in stage_dir.glob("*.parquet"):
            table = pq.read_table(p).to_pylist()
            for row in table:
                if stage_dir.name == "_input":
                    where = input_rejects.setdefault(row["source"], {})
                    assert row["line"] not in where, f"{row['source']}:{row['line']} quarantined twice"
                    where[row["line"]] = row["reject_reason"]
                else:
                    stage_rejects[row["id"]] += 1
    out_ids = kept + stage_rejects
    want_ids = Counter(i for ids in expected.ids.values() for i in ids)
    missing, extra = want_ids - out_ids, out_ids - want_ids
    assert not missing and not extra, f"documents lost: {sorted(missing)}; unexpected: {sorted(extra)}"
    assert input_rejects == expected.rejects
    assert c["records_in"] == sum(want_ids.values()) + sum(len(r) for r in expected.rejects.values())
    skipped = " ".join(summary["skipped_inputs"])
    for name in expected.skipped:
        assert Path(name).suffix in skipped, summary["skipped_inputs"]
