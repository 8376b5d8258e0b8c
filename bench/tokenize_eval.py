"""Evaluate the tokenize stage (numbers for the tokenize issue).

Usage: python bench/tokenize_eval.py [--workers 1 2] [--shard-mb 4]
1. The default pipeline (pipelines/ja.yaml, tokenizer trained by the stage: 32k unigram on a sample
   spread over genre clusters) over every file of ../shared/data/web and clean.
2. Tokens per character with that tokenizer on the raw crawl pages (as crawled, NFKC), on the same
   pages after the pipeline, and on clean text (Wikipedia leads, livedoor news).
3. Throughput of `normalize + tokenize` (the trained model given, so no training) on the crawl pages
   plus livedoor, with 1 worker in-process and 1 and N Ray workers: the tokenize stage's MB of text
   per second per core, including its closing step (spills, parts, mixture files).
4. megatron-core's IndexedDataset over every part of run 1: documents, ids, decode == text.
Writes bench/results/tokenize-eval-DATE.{json,md}; no text of ../shared is written anywhere else.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import sys
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions
from cleaning.tokenize.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CRAWL = SHARED / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"
CLEAN = {
    "wikipedia_leads": SHARED / "clean" / "ku_wikipedia_leads.jsonl.gz",
    "livedoor": SHARED / "clean" / "livedoor_news.jsonl.gz",
}
SPEED = """input: {{shard_mb: {shard_mb}}}
stages:
  - normalize
  - stage: tokenize
    model: {model}
    part_mb: 64
"""


def texts(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [unicodedata.normalize("NFKC", json.loads(line)["text"]) for line in f]


def run(pipeline: Path, inputs: list[str], out: Path, workers: int, use_ray: bool, overrides: list[str]) -> dict:
    opts = RunOptions(inputs, out, workers=workers, use_ray=use_ray, progress=False)
    return Runner(load_pipeline(pipeline, overrides), opts, Console(file=io.StringIO())).run()


def chars_per_token(tok: Tokenizer, docs: list[str]) -> dict:
    started = time.perf_counter()
    tokens = sum(len(ids) - 1 for ids in tok.encode(docs))
    seconds = time.perf_counter() - started
    chars = sum(map(len, docs))
    mb = sum(len(d.encode()) for d in docs) / 1e6
    return {
        "docs": len(docs),
        "chars": chars,
        "tokens": tokens,
        "chars_per_token": round(chars / tokens, 3),
        "tokens_per_char": round(tokens / chars, 4),
        "encode_mb_per_s": round(mb / seconds, 1),
    }


def megatron_check(out: Path) -> dict:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    final = Path(json.loads((out / "summary.json").read_text())["final_shards"])
    docs = {}
    for f in sorted(final.glob("*.parquet")):
        for row in pq.read_table(f, columns=["text", "tokens", "repeat"]).to_pylist():
            docs[tuple(row["tokens"])] = row["text"]
    tok = Tokenizer(out / "tokens" / "tokenizer.model")
    read = exact = parts = 0
    for idx in sorted((out / "tokens").glob("*/part-*.idx")):
        dataset = IndexedDataset(str(idx.with_suffix("")))
        parts += 1
        for i in range(len(dataset)):
            ids = dataset[i]
            read += 1
            exact += tok.decode(ids) == docs.get(tuple(int(x) for x in ids))
    return {"parts": parts, "documents_read": read, "decoded_exactly": exact, "final_documents": len(docs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--shard-mb", type=float, default=8.0)
    parser.add_argument("--copies", type=int, default=3, help="copies of the speed input (~48 MB each)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    if not SHARED.is_dir():
        sys.exit("tokenize_eval: ../shared/data is not present")
    result: dict = {"date": date.today().isoformat(), "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full"
        inputs = sorted(str(p) for p in [*SHARED.glob("web/*.jsonl.gz"), *SHARED.glob("clean/*.jsonl.gz")])
        started = time.perf_counter()
        summary = run(ROOT / "pipelines" / "ja.yaml", inputs, full, 2, True, [f"input.shard_mb={args.shard_mb}"])
        tokenize = summary["stages"][-1]
        info = json.loads(next(full.glob("*-tokenize/_prepare/artifacts/tokenize.json")).read_text())
        result["full_run"] = {
            "wall_s": round(time.perf_counter() - started, 1),
            "tokenizer_training": info["training"],
            "vocab_size": info["tokenizer"]["vocab_size"],
            "finish": tokenize["finish"],
        }
        model = full / "tokens" / "tokenizer.model"
        tok = Tokenizer(model)
        crawl = texts(CRAWL)
        cleaned = []
        final = Path(summary["final_shards"])
        for f in sorted(final.glob("*.parquet")):
            table = pq.read_table(f, columns=["text", "source"])
            cleaned += [
                t for t, s in zip(table["text"].to_pylist(), table["source"].to_pylist(), strict=True) if "cc-main" in s
            ]
        result["chars_per_token"] = {
            "crawl_raw": chars_per_token(tok, crawl),
            "crawl_after_pipeline": chars_per_token(tok, cleaned),
            **{name: chars_per_token(tok, texts(path)) for name, path in CLEAN.items()},
        }
        result["megatron"] = megatron_check(full)

        speed = Path(tmp) / "speed.yaml"
        speed.write_text(SPEED.format(shard_mb=args.shard_mb, model=model))
        rows = []
        copies = Path(tmp) / "copies"
        for i in range(args.copies):  # distinct files: the same text read as separate inputs
            (copies / str(i)).mkdir(parents=True)
            for path in (CRAWL, CLEAN["livedoor"]):
                shutil.copyfile(path, copies / str(i) / path.name)
        for workers, use_ray in [(1, False)] + [(n, True) for n in args.workers]:
            s = run(speed, [str(copies)], Path(tmp) / f"speed-{workers}-{use_ray}", workers, use_ray, [])
            st = s["stages"][-1]
            mb = st["bytes_in"] / 1e6
            rows.append(
                {
                    "workers": workers,
                    "ray": use_ray,
                    "shards": st["shards"],
                    "docs": st["docs_in"],
                    "mb": round(mb, 1),
                    "wall_s": st["wall_seconds"],
                    "prepare_s": st["prepare_seconds"],
                    "finish_s": st["finish"]["seconds"],
                    "mb_per_s_per_core": round(mb / st["wall_seconds"] / workers, 2),
                    "docs_per_s_per_core": round(st["docs_in"] / st["wall_seconds"] / workers, 1),
                    "tokens": st["finish"]["tokens"],
                }
            )
        base = next((r for r in rows if r["ray"] and r["workers"] == 1), None)
        for r in rows:
            if base and r["ray"] and r["workers"] > 1:
                r["scaling_efficiency"] = round(r["mb_per_s_per_core"] / base["mb_per_s_per_core"], 2)
        result["throughput"] = rows
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"tokenize-eval-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| text | docs | chars/token | tokens/char | encode MB/s (1 thread) |", "|---|---|---|---|---|"]
    for name, r in result["chars_per_token"].items():
        lines.append(
            f"| {name} | {r['docs']:,} | {r['chars_per_token']} | {r['tokens_per_char']} | {r['encode_mb_per_s']} |"
        )
    cols = [
        "workers",
        "ray",
        "shards",
        "mb",
        "wall_s",
        "prepare_s",
        "finish_s",
        "mb_per_s_per_core",
        "docs_per_s_per_core",
        "scaling_efficiency",
    ]
    lines += ["", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in result["throughput"]]
    lines += [
        "",
        f"megatron-core IndexedDataset: {json.dumps(result['megatron'])}",
        f"full run: {json.dumps(result['full_run'])}",
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
