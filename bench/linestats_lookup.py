"""How the rules stage's per-shard lookups cost as the corpus-wide line tables get more partitions.

Usage: python bench/linestats_lookup.py [--partitions 4 256 4096] [--copies 3] [--tag before]
The line tables are cut into partitions of about `site_partition_mb` of spill, so a terabyte has
thousands (up to 4,096); every batch of the rules stage looks its lines up in them. The 3,500 crawl
pages (NFKC, `copies` times with the copy number in the URL, so hosts and lines multiply) are
counted with each fixed partition count, then one batch of 1,024 pages at a time is looked up, as
the stage does. Lookup time per batch must not grow with the partition count. Writes
bench/results/linestats-lookup-DATE[-TAG].json.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cleaning.hosts import host_of
from cleaning.rules.linefeatures import DocLines
from cleaning.rules.linescan import Scanned
from cleaning.rules.linestats import CorpusLineStats, count_lines

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT.parent / "shared" / "data" / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"


def pages(copies: int) -> list[dict[str, str]]:
    with gzip.open(PAGES, "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out = []
    for copy in range(copies):
        for r in rows:
            url = (r.get("url") or "").replace("://", f"://c{copy}.", 1)
            out.append({"text": unicodedata.normalize("NFKC", r["text"]), "url": url})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, nargs="+", default=[4, 256, 4096])
    parser.add_argument("--copies", type=int, default=3)
    parser.add_argument("--tag", default="", help="suffix of the results file, e.g. before")
    args = parser.parse_args()
    if not PAGES.exists():
        raise SystemExit(f"linestats_lookup: {PAGES} not found (../shared is needed)")
    rows = pages(args.copies)
    batches = []
    for i in range(0, len(rows), 1024):
        docs = [DocLines([s.strip() for s in r["text"].split("\n")], host_of(r["url"]), []) for r in rows[i : i + 1024]]
        batches.append((docs, Scanned.of([s for d in docs for s in d.lines])))
    lines = sum(len(d.lines) for docs, _ in batches for d in docs)
    report: dict = {"date": date.today().isoformat(), "pages": len(rows), "lines": lines, "batches": len(batches)}
    with tempfile.TemporaryDirectory(prefix="linestats-bench-") as tmp:
        shard = Path(tmp) / "docs.parquet"
        pq.write_table(pa.Table.from_pylist(rows), shard)
        for parts in args.partitions:
            out = Path(tmp) / f"p{parts}"
            out.mkdir()
            start = time.perf_counter()
            count_lines([shard], out, partitions=parts)
            counted = time.perf_counter() - start
            stats = CorpusLineStats(out)
            docs, sc = batches[0]
            stats.lookup(docs, sc.hashes, sc.templates, sc.has_template)  # warm the memory maps
            start = time.perf_counter()
            for docs, sc in batches:
                stats.lookup(docs, sc.hashes, sc.templates, sc.has_template)
            looked = time.perf_counter() - start
            report[f"partitions_{parts}"] = {
                "count_s": round(counted, 2),
                "lookup_s": round(looked, 3),
                "lookup_ms_per_batch": round(looked * 1000 / len(batches), 2),
            }
            print(parts, report[f"partitions_{parts}"], flush=True)
    tag = f"-{args.tag}" if args.tag else ""
    dest = ROOT / "bench" / "results" / f"linestats-lookup-{date.today().isoformat()}{tag}.json"
    dest.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
