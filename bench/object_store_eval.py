"""A run in object storage against the same run on local disk: wall time, peak memory, the bytes.

Usage (from the project root, with the project's venv):
    .venv/bin/python bench/object_store_eval.py [--input FILE] [--workers N]

What it does, on the 3,500 crawl pages by default (../shared/data/web/cc-main-2023-50_ja_pages.jsonl.gz):
  * starts moto's S3 server on 127.0.0.1 (a loopback store: no network cost, so this measures what
    the pipeline adds, not what a real store costs) and stops it at the end;
  * runs `cleaning run pipelines/ja.yaml` to a local folder, then to `s3://bench/run` with a fresh
    work folder, then again to the same URL with another fresh work folder (a rerun on a new
    machine: nothing to do, and only state files fetched);
  * downloads the published run and compares every data file (all but JSON/YAML notes, which hold
    timings and paths) with the local run's, byte for byte.

Writes bench/results/object-store-eval-<YYYY-MM-DD>.md (also printed) and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CRAWL = ROOT.parent / "shared" / "data" / "web" / "cc-main-2023-50_ja_pages.jsonl.gz"
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(output: str, inputs: str, env: dict[str, str], extra: list[str], peak_file: Path) -> dict[str, float]:
    """Wall time and the driver's peak RSS (bench/peak.py) of one `cleaning run`."""
    cmd = [
        sys.executable,
        str(ROOT / "bench" / "peak.py"),
        str(peak_file),
        "-m",
        "cleaning",
        "run",
        "pipelines/ja.yaml",
    ]
    cmd += ["--input", inputs, "--output", output, "--no-progress", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return {"wall_s": round(wall, 1), "driver_peak_rss_mb": int(peak_file.read_text())}


def data_files(root: Path) -> dict[str, bytes]:
    skip = {".lock", ".store"}
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.suffix not in (".json", ".yml", ".yaml") and p.name not in skip
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=CRAWL)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    if not args.input.exists():
        sys.exit(f"{args.input} not found (../shared/data is needed)")
    port = free_port()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
    env |= {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tmp = Path(tempfile.mkdtemp(prefix="object-store-eval-"))
    extra = ["--workers", str(args.workers)] if args.workers else []
    try:
        make_bucket = (
            "import s3fs, time\nfor _ in range(60):\n    try:\n        s3fs.S3FileSystem().mkdir('bench'); break\n"
        )
        make_bucket += "    except Exception:\n        time.sleep(0.5)\n"
        subprocess.run([sys.executable, "-c", make_bucket], env=env, check=True)
        peak = tmp / "peak"
        local = timed_run(str(tmp / "local"), str(args.input), env, extra, peak)
        remote = timed_run("s3://bench/run", str(args.input), env, [*extra, "--work", str(tmp / "machine-a")], peak)
        rerun = timed_run("s3://bench/run", str(args.input), env, [*extra, "--work", str(tmp / "machine-b")], peak)
        fetch = f"import s3fs; s3fs.S3FileSystem().get('bench/run', {str(tmp / 'published')!r}, recursive=True)"
        subprocess.run([sys.executable, "-c", fetch], env=env, check=True)
        mine, theirs = data_files(tmp / "local"), data_files(tmp / "published")
        fresh = [p for p in (tmp / "machine-b").rglob("*") if p.is_file()]
        result = {
            "date": date.today().isoformat(),
            "input": str(args.input.relative_to(ROOT.parent))
            if args.input.is_relative_to(ROOT.parent)
            else str(args.input),
            "input_mb": round(args.input.stat().st_size / 1e6, 1),
            "local": local,
            "s3": remote,
            "s3_rerun_fresh_machine": {
                **rerun,
                "files_fetched": len(fresh),
                "mb_fetched": round(sum(p.stat().st_size for p in fresh) / 1e6, 1),
                "shards_fetched": sum(1 for p in fresh if p.parent.name == "shards"),
            },
            "data_files": len(mine),
            "data_mb": round(sum(map(len, mine.values())) / 1e6, 1),
            "same_files": sorted(mine) == sorted(theirs),
            "same_bytes": mine == theirs,
            "differing": sorted(k for k in mine if theirs.get(k) != mine[k])[:20],
        }
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"object-store-eval-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    fresh = result["s3_rerun_fresh_machine"]
    lines = [
        f"# A run in object storage vs on local disk ({result['date']})",
        "",
        f"Input: `{result['input']}` ({result['input_mb']} MB), `pipelines/ja.yaml`; store: moto's S3 server on",
        "127.0.0.1 (no network cost). One run each: this machine is noisy (±15%).",
        "",
        "| run | wall s | driver peak RSS MB |",
        "|---|---|---|",
        f"| `--output` local folder | {local['wall_s']} | {local['driver_peak_rss_mb']} |",
        f"| `--output s3://bench/run`, fresh work folder | {remote['wall_s']} | {remote['driver_peak_rss_mb']} |",
        f"| same URL again, another fresh work folder | {fresh['wall_s']} | {fresh['driver_peak_rss_mb']} |",
        "",
        f"- Published data files: {result['data_files']} ({result['data_mb']} MB); same set as the local run:"
        f" {result['same_files']}; same bytes: {result['same_bytes']}.",
        f"- The rerun on a fresh work folder fetched {fresh['files_fetched']} files ({fresh['mb_fetched']} MB:"
        f" markers, manifests, artifacts, models), {fresh['shards_fetched']} of them shards.",
    ]
    text = "\n".join(lines) + "\n"
    stem.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
