"""WARC input: how clean each HTML extractor leaves real pages, and how fast WARCs are read.

Usage (from the project root, with the project's venv):
    .venv/bin/python bench/warc_eval.py [--reps 20] [--skip-peer]

What it does:
  * builds WARCs from the 104 raw HTML pages of ../shared/data/raw_html in bench/.cache/warc/
    (never in the repository), laid out like Common Crawl's (request, response, metadata per page);
    a fifth of the pages re-encoded as Shift_JIS and a fifth as EUC-JP, a third without an HTTP
    charset, so decoding is exercised;
  * quality: runs `cleaning run pipelines/ja.yaml` once per extractor on one copy of the pages and
    scores the text after ingest and in the final output (with `cleaning eval`'s scorer) against
    bench/data/raw-html-labels.jsonl:
    73 pages whose `resiliparse-all` text was labelled line by line (C content, B boilerplate,
    N neutral; page KEEP/BORDER/DROP, as ../shared/data/gold/GUIDELINES.md) by careful readers. The
    labels hold no page text: a page is found by URL and checked by the SHA-1 of its extracted text.
    A labelled line counts as kept when it is a line of the output (each output line standing for
    one labelled copy) or, from 10 characters, inside one; output lines holding no labelled line
    are unlabelled kept text, counted as unwanted;
  * throughput: reads the `--reps` copies with our reader (one process, one core) per extractor,
    and with datatrove's WarcReader + Trafilatura extractor (bench/.venv-peers, pinned), timing
    wall and CPU seconds (datatrove extracts in a child process: its CPU time is counted too).

Writes bench/results/warc-eval-<YYYY-MM-DD>.md (also printed) and .json.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import resource
import subprocess
import sys
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from peer_venv import PEERS, peer_python  # bench/peer_venv.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
RAW_HTML = ROOT.parent / "shared" / "data" / "raw_html" / "cc-main-2023-50_ja_html.jsonl.gz"
LABELS = ROOT / "bench" / "data" / "raw-html-labels.jsonl"
CACHE = ROOT / "bench" / ".cache" / "warc"
RESULTS = ROOT / "bench" / "results"
PYTHON = ROOT / ".venv" / "bin" / "python"
EXTRACTORS = ("resiliparse-all", "resiliparse", "trafilatura")
ENCODINGS = {1: ("cp932", "Shift_JIS"), 2: ("euc_jp", "EUC-JP")}  # page index % 5 -> re-encoding

OURS = r"""
import json, resource, sys, time
from pathlib import Path
from collections import Counter
from cleaning.readers import BadRecord, ReaderConfig, read_records
path, extractor = Path(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
counts = Counter()
chars = 0
for item in read_records(path, path.name, ReaderConfig(extractor=extractor)):
    if isinstance(item, BadRecord):
        counts[item.reason] += 1
    else:
        counts["document"] += 1
        chars += len(item.text)
wall = time.perf_counter() - start
cpu = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"wall_s": wall, "cpu_s": cpu.ru_utime + cpu.ru_stime, "counts": counts, "chars": chars}))
"""

# Runs inside bench/.venv-peers, never in the project's venv. argv[1]: the WARC's folder.
PEER = r"""
import json, resource, sys, time, logging
from datatrove.pipeline.readers import WarcReader
from datatrove.pipeline.extractors import Trafilatura
logging.disable(logging.WARNING)
start = time.perf_counter()
read = 0
def counted(docs):
    global read
    for doc in docs:
        read += 1
        yield doc
reader = WarcReader(sys.argv[1], glob_pattern="*.warc.gz")
extractor = Trafilatura(favour_precision=True, timeout=10.0)
kept = chars = 0
for doc in extractor.run(counted(reader.run(None, 0, 1)), 0, 1):
    kept += 1
    chars += len(doc.text)
wall = time.perf_counter() - start
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "counts": {"read": read, "document": kept}, "chars": chars}))
"""


def build_warc(dest: Path, reps: int) -> dict[str, Any]:
    """`reps` copies of the raw HTML pages as a Common Crawl-like WARC (copies get distinct URLs)."""
    from warcio.statusandheaders import StatusAndHeaders
    from warcio.warcwriter import WARCWriter

    with gzip.open(RAW_HTML, "rt", encoding="utf-8") as f:
        pages = [json.loads(line) for line in f]
    dest.parent.mkdir(parents=True, exist_ok=True)
    html_bytes = 0
    with open(dest, "wb") as f:
        writer = WARCWriter(f, gzip=True)
        for rep in range(reps):
            for i, page in enumerate(pages):
                codec, label = ENCODINGS.get(i % 5, ("utf-8", "UTF-8"))
                try:
                    body = page["html"].encode(codec)
                except UnicodeEncodeError:
                    body, label = page["html"].encode("utf-8"), "UTF-8"
                ctype = f"text/html; charset={label}" if i % 3 else "text/html"
                url = page["url"] + (f"#copy{rep}" if rep else "")
                date_header = {"WARC-Date": page["timestamp"]}
                get = io.BytesIO(f"GET {url} HTTP/1.1\r\n\r\n".encode())
                writer.write_record(
                    writer.create_warc_record(url, "request", payload=get, warc_headers_dict=date_header)
                )
                http = StatusAndHeaders("200 OK", [("Content-Type", ctype)], protocol="HTTP/1.1")
                writer.write_record(
                    writer.create_warc_record(
                        url, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=date_header
                    )
                )
                meta = io.BytesIO(b"fetchTimeMs: 100\r\n")
                writer.write_record(writer.create_warc_record(url, "metadata", payload=meta))
                html_bytes += len(body)
    return {"pages": len(pages) * reps, "html_mb": html_bytes / 1e6, "warc_gz_mb": dest.stat().st_size / 1e6}


def norm(line: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", line).split())


def labelled_pages(warc: Path) -> tuple[dict[str, dict[str, Any]], int]:
    """Labelled pages by URL with their `resiliparse-all` lines; pages whose text no longer matches the
    labels (another extractor version) are left out and counted."""
    from cleaning.readers import BadRecord, ReaderConfig, read_records

    texts = {
        d.fields["url"]: d.text
        for d in read_records(warc, warc.name, ReaderConfig(extractor="resiliparse-all"))
        if not isinstance(d, BadRecord)
    }
    pages, drifted = {}, 0
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        label = json.loads(line)
        text = texts.get(label["url"])
        if text is None or hashlib.sha1(text.encode()).hexdigest() != label["text_sha1"]:
            drifted += 1
            continue
        pages[label["url"]] = {**label, "lines": [norm(x) for x in text.split("\n")]}
    return pages, drifted


def kept_texts(stage_dir: Path) -> dict[str, str]:
    out = {}
    for f in sorted((stage_dir / "shards").glob("*.parquet")):
        for row in pq.read_table(f, columns=["url", "text"]).to_pylist():
            out[row["url"]] = row["text"]
    return out


def score(pages: dict[str, dict[str, Any]], kept: dict[str, str]) -> dict[str, Any]:
    """The five figures, by `cleaning eval`'s own scorer, with kept lines matched by text (see the
    module docstring): each labelled line is kept or not; output lines containing no labelled line
    count as unlabelled kept text (unwanted)."""
    from cleaning.evaluation.align import PageResult
    from cleaning.evaluation.score import score as five_figures
    from cleaning.pagelabels import PageLabel

    results = []
    for url, page in pages.items():
        lines, labels = page["lines"], page["labels"]
        out = [norm(x) for x in kept.get(url, "").split("\n") if norm(x)]
        left, blob, out_lines, line_set = Counter(out), "\n".join(out), set(out), set(lines)
        kept_lines = []
        for t in lines:  # each output line keeps one labelled copy: a line repeated on the page counts once
            if left[t] > 0:
                left[t] -= 1
                kept_lines.append(True)
            else:  # joined into a longer output line (not a copy beyond those the output has)
                kept_lines.append(t not in out_lines and len(t) >= 10 and t in blob)
        unmatched = sum(len(o) for o in out if o not in line_set and not _contains_a_line(o, lines))
        results.append(
            PageResult(
                PageLabel(url, labels, page["page"], LABELS.name),
                "kept" if url in kept else "rejected",
                "",
                [len(t) for t in lines],
                kept_lines,
                [None] * len(lines),
                unmatched,
            )
        )
    figures = five_figures(results).as_dict()
    figures["kept_chars"] = sum(len(x) for url in pages if url in kept for x in kept[url].split("\n"))
    return figures


def _contains_a_line(line: str, lines: list[str]) -> bool:
    """Whether an output line holds a labelled line of 4+ characters (lines an extractor joined)."""
    return any(len(t) >= 4 and t in line for t in lines)


def quality(warc: Path) -> dict[str, Any]:
    pages, drifted = labelled_pages(warc)
    verdicts = [p["page"] for p in pages.values()]
    result: dict[str, Any] = {
        "pages": len(pages),
        "left_out_changed_text": drifted,
        "verdicts": {v: verdicts.count(v) for v in ("KEEP", "BORDER", "DROP")},
    }
    for extractor in EXTRACTORS:
        out = CACHE / f"run-{extractor}"
        cmd = [str(PYTHON), "-m", "cleaning", "run", str(ROOT / "pipelines" / "ja.yaml"), "--input", str(warc)]
        cmd += ["--output", str(out), "--force", "--no-progress", "--set", f"input.extractor={extractor}"]
        print(f"quality: {extractor} …", file=sys.stderr)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        stages = sorted(p for p in out.iterdir() if p.is_dir() and p.name[:2].isdigit())
        result[extractor] = {
            "after_ingest": score(pages, kept_texts(stages[0])),
            "final_output": score(pages, kept_texts(stages[-1])),
        }
    return result


def throughput(warc: Path, info: dict[str, Any], skip_peer: bool) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result: dict[str, Any] = {}
    runs: list[tuple[str, list[str]]] = [(f"ours, {x}", [str(PYTHON), "-c", OURS, str(warc), x]) for x in EXTRACTORS]
    if not skip_peer:
        runs.append(
            (
                f"datatrove {PEERS['datatrove']} WarcReader + Trafilatura",
                [str(peer_python()), "-c", PEER, str(warc.parent)],
            )
        )
    for name, cmd in runs:
        print(f"throughput: {name} …", file=sys.stderr)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"{name} failed:\n{proc.stderr[-2000:]}")
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        figures["cpu_s"] = max(figures["cpu_s"], cpu)  # the child and anything it started
        figures["warc_mb_per_cpu_s"] = round(info["warc_gz_mb"] / figures["cpu_s"], 2)
        figures["html_mb_per_cpu_s"] = round(info["html_mb"] / figures["cpu_s"], 2)
        figures["pages_per_cpu_s"] = round(info["pages"] / figures["cpu_s"], 1)
        result[name] = figures
    return result


def report(results: dict[str, Any]) -> str:
    q, t, info = results["quality"], results["throughput"], results["warc"]
    lines = [
        f"# WARC input: extractors and throughput ({results['date']})",
        "",
        f"Labelled pages: {q['pages']} ({q['verdicts']}); {q['left_out_changed_text']} left out (text changed).",
        "Figures as `cleaning eval` (purity: kept characters that are wanted; content recall: kept"
        " characters of content lines on KEEP pages), matched by line text.",
        "",
        "| extractor | where | purity | content recall | page precision | page recall |"
        " boilerplate lines per kept KEEP page (mean / median) | kept characters |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for extractor in EXTRACTORS:
        for where in ("after_ingest", "final_output"):
            s = q[extractor][where]
            lines.append(
                f"| {extractor} | {where.replace('_', ' ')} | {s['purity']} | {s['content_recall']} |"
                f" {s['page_precision']} | {s['page_recall']} | {s['boilerplate_lines_mean']} /"
                f" {s['boilerplate_lines_median']} | {s['kept_chars']:,} |"
            )
    lines += [
        "",
        f"Throughput on {info['pages']:,} pages ({info['html_mb']:.1f} MB of HTML, {info['warc_gz_mb']:.1f} MB"
        " of WARC.gz), one process (datatrove's extractor runs in a child process: CPU counts both):",
        "",
        "| reader | wall s | CPU s | MB of WARC.gz / CPU s | MB of HTML / CPU s | pages / CPU s | documents |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in t.items():
        lines.append(
            f"| {name} | {f['wall_s']:.1f} | {f['cpu_s']:.1f} | {f['warc_mb_per_cpu_s']} | {f['html_mb_per_cpu_s']} |"
            f" {f['pages_per_cpu_s']} | {f['counts'].get('document', 0):,} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=20, help="copies of the pages in the throughput WARC")
    parser.add_argument("--skip-peer", action="store_true", help="do not run datatrove")
    args = parser.parse_args()
    if not RAW_HTML.exists():
        raise SystemExit(f"{RAW_HTML} is missing: this bench needs ../shared")
    one = CACHE / "one" / "pages.warc.gz"
    many = CACHE / "many" / "pages.warc.gz"
    build_warc(one, 1)
    info = build_warc(many, args.reps)
    results = {
        "date": date.today().isoformat(),
        "peers": PEERS,
        "warc": info,
        "quality": quality(one),
        "throughput": throughput(many, info, args.skip_peer),
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"warc-eval-{results['date']}"
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    text = report(results)
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
