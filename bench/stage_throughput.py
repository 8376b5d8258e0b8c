"""Measure ingest and every stage of a pipeline with 1 and N workers; write JSON + markdown results.

Usage: python bench/stage_throughput.py [--input FILE ...] [--workers 1 2] [--shard-mb 2] [--repeat 1]
Default input: ../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz (real crawl pages).
Figures are text bytes (UTF-8) per second. "per core" divides wall-clock throughput by the
number of workers; "busy" is throughput per second a worker spent inside its tasks.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
from datetime import date
from pathlib import Path

from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUT = ROOT.parent / "shared" / "data" / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"


def measure(pipeline: Path, inputs: list[str], workers: int, use_ray: bool, shard_mb: float) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        opts = RunOptions(inputs, Path(tmp) / "out", workers=workers, use_ray=use_ray, progress=False)
        spec = load_pipeline(pipeline, [f"input.shard_mb={shard_mb}"])
        summary = Runner(spec, opts, Console(file=io.StringIO())).run()
    rows = []
    for s in summary["stages"]:
        mb = s["bytes_in"] / 1e6
        rows.append(
            {
                "stage": s["stage"],
                "workers": workers,
                "ray": use_ray,
                "shards": s["shards"],
                "docs": s["docs_in"],
                "mb": round(mb, 2),
                "wall_s": s["wall_seconds"],
                "mb_per_s": round(mb / s["wall_seconds"], 2),
                "mb_per_s_per_core": round(mb / s["wall_seconds"] / workers, 2),
                "mb_per_busy_s": round(mb / s["seconds"], 2),
                "docs_per_s_per_core": round(s["docs_in"] / s["wall_seconds"] / workers, 1),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", nargs="+", default=[str(DEFAULT_INPUT)])
    parser.add_argument("--pipeline", default=str(ROOT / "pipelines" / "ja.yaml"))
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--shard-mb", type=float, default=2.0, help="small shards so N workers have work")
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting; the fastest is kept")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    missing = [p for p in args.input if not Path(p).exists()]
    if missing:
        sys.exit(f"bench: input not found: {missing} (is ../shared present?)")
    settings = [(1, False)] + [(n, True) for n in args.workers]
    rows = []
    for workers, use_ray in settings:
        runs = [measure(Path(args.pipeline), args.input, workers, use_ray, args.shard_mb) for _ in range(args.repeat)]
        for stage_rows in zip(*runs, strict=True):  # the same stage across repeats
            rows.append(max(stage_rows, key=lambda r: r["mb_per_s"]))
    by = {(r["stage"], r["workers"], r["ray"]): r for r in rows}
    for r in rows:
        base = by.get((r["stage"], 1, True))
        if r["ray"] and r["workers"] > 1 and base:
            r["scaling_efficiency"] = round(r["mb_per_s"] / (r["workers"] * base["mb_per_s"]), 2)
    result = {
        "date": date.today().isoformat(),
        "host": platform.node(),
        "cpu_count": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "inputs": args.input,
        "shard_mb": args.shard_mb,
        "rows": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"{result['date']}-{result['host']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    cols = [
        "stage",
        "workers",
        "ray",
        "shards",
        "mb",
        "wall_s",
        "mb_per_s",
        "mb_per_s_per_core",
        "mb_per_busy_s",
        "docs_per_s_per_core",
        "scaling_efficiency",
    ]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"\nwritten: {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
