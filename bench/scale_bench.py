"""`make bench-scale`: how every stage's cost grows with the corpus, and a 1 TB projection from it.

Runs the default pipeline (pipelines/ja.yaml, Ray, all CPUs) on bench corpora of growing size
(default 50, 150 and 450 MB) whose host count grows with size (bench/corpus.py --grow-hosts: every
copy of a page on a host of its own, as real crawls grow), then once on 20,000 one-record files.
Per size and stage: wall time (with its corpus-wide and closing steps), the driver's and the largest
worker's peak memory; per run: peak temporary disk under OUTPUT and peak file count (sampled every
second). Per stage: the growth exponent of wall time between consecutive sizes (1 = linear).
The projection to 1 TB on 64 cores takes each stage's time as the larger of a·size^b and a fixed plus
per-MB cost through the two largest sizes and divides by 32 (64 cores / 2 here); its assumptions are
written next to it. A calibration loop before and after each run (bench/calibration.py) gives this
machine's speed against a reference, and the projection at the reference speed: comparable across days. Results go to
bench/results/scale-DATE.{json,md}. Not part of the unit tests: it takes about 10 minutes.
`--mb` with no sizes runs only the small files (`--mb --small-files 100000`: the 100,000-file check),
written to bench/results/scale-DATE-small-files.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import corpus as bench_corpus  # bench/corpus.py (this script's folder is on sys.path)
from calibration import REFERENCE_MB_PER_S, calibrate

ROOT = Path(__file__).resolve().parent.parent
TB = 1e6  # MB in a terabyte


class DiskSampler:
    """Peak bytes and file count under a folder, sampled from a thread while a run goes on."""

    def __init__(self, folder: Path, every: float = 1.0) -> None:
        self.folder, self.every = folder, every
        self.peak_bytes = self.peak_files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> DiskSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def _sample(self) -> None:
        size = files = 0
        for dirpath, _, names in os.walk(self.folder):
            for name in names:
                try:
                    size += os.stat(os.path.join(dirpath, name)).st_size
                    files += 1
                except OSError:
                    continue
        self.peak_bytes, self.peak_files = max(self.peak_bytes, size), max(self.peak_files, files)


def run_pipeline(inputs: Path, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "cleaning", "run", str(ROOT / "pipelines" / "ja.yaml")]
    cmd += ["--input", str(inputs), "--output", str(out), "--no-progress", "--set", "work.intermediates=delete"]
    before = calibrate(2.0)
    started = time.perf_counter()
    with DiskSampler(out) as disk:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = round(time.perf_counter() - started, 1)
    after = calibrate(2.0)
    if done.returncode:
        raise SystemExit(f"run failed:\n{done.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())
    stages = {
        s["stage"]: {
            "wall_s": s["wall_seconds"] + (s.get("finish") or {}).get("seconds", 0.0),
            "corpus_wide_s": s.get("prepare_seconds", 0.0),
            "driver_peak_mb": s.get("driver_peak_rss_mb"),
            "worker_peak_mb": s.get("peak_rss_mb"),
            "shards": s["shards"],
        }
        for s in summary["stages"]
    }
    trained = next(iter(out.glob("*-tokenize/_prepare/artifacts/tokenize.json")), None)
    training = json.loads(trained.read_text()).get("training") if trained else None
    if training and "tokenize" in stages:  # sentencepiece's training: capped by tokenize.sample_mb
        stages["tokenize"]["tokenizer_training_s"] = training["seconds"]
        stages["tokenize"]["tokenizer_sample_mb"] = round(training["bytes"] / 1e6, 1)
    pairs = next(iter(out.glob("*-dedup/_prepare/artifacts/dedup.json")), None)
    if pairs and "dedup" in stages:  # how much work the corpus-wide step had: its cost per candidate pair
        found = json.loads(pairs.read_text())
        stages["dedup"]["candidate_pairs"] = found.get("candidate_pairs", 0)
        stages["dedup"]["exact_pairs"] = found.get("exact_pairs", 0)
    return {
        "wall_s": wall,
        "calibration_mb_per_s": [before, after],
        "stages": stages,
        "peak_disk_mb": round(disk.peak_bytes / 1e6, 1),
        "peak_files": disk.peak_files,
        "docs": summary["conservation"]["records_in"],
    }


def small_files(source: Path, folder: Path, count: int) -> Path:
    """`count` one-record files made from the first records of the corpus's files (100 per folder).
    Until 2026-12-01 only the first corpus file was read, which held 7,890 records: "20,000 files"
    were 7,890. The corpus must hold `count` records."""
    import gzip

    folder.mkdir(parents=True, exist_ok=True)
    i = 0
    for path in sorted(source.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                if i == count:
                    return folder
                sub = folder / f"{i // 100:04d}"
                sub.mkdir(exist_ok=True)
                (sub / f"{i:06d}.jsonl").write_text(line, encoding="utf-8")
                i += 1
    raise SystemExit(f"{source} holds only {i:,} records: fewer than --small-files {count:,}")


def exponents(sizes: list[float], runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for stage in runs[0]["stages"]:
        values = []
        for i in range(len(sizes) - 1):
            (s1, r1), (s2, r2) = (sizes[i], runs[i]), (sizes[i + 1], runs[i + 1])
            t1, t2 = r1["stages"][stage]["wall_s"], r2["stages"][stage]["wall_s"]
            values.append(round(math.log(max(t2, 1e-3) / max(t1, 1e-3)) / math.log(s2 / s1), 2))
        out[stage] = values
    return out


def projection(sizes: list[float], runs: list[dict[str, Any]], cores: int) -> dict[str, Any]:
    """Each stage's time at 1 TB through the two largest runs, divided by 64/cores: the larger of a·size^b
    and a fixed plus a per-MB cost (a growth exponent under 1 is a fixed cost, not cheaper MBs).
    The tokenizer's training inside tokenize is projected apart: its sample grows with the corpus
    only up to `tokenize.sample_mb`, so it is fitted against the sample and taken at the cap (and
    not divided by the cores: sentencepiece's training is mostly serial)."""
    (s1, r1), (s2, r2) = list(zip(sizes, runs, strict=True))[-2:]
    hours, power_hours = {}, {}
    notes = []
    for stage in r2["stages"]:
        t1, t2 = max(r1["stages"][stage]["wall_s"], 1e-3), max(r2["stages"][stage]["wall_s"], 1e-3)
        fixed = 0.0
        a, b = r1["stages"][stage], r2["stages"][stage]
        if "tokenizer_training_s" in a and "tokenizer_training_s" in b:
            cap = _sample_cap()
            d = math.log(b["tokenizer_training_s"] / a["tokenizer_training_s"]) / math.log(
                b["tokenizer_sample_mb"] / a["tokenizer_sample_mb"]
            )
            sample = min(cap, b["tokenizer_sample_mb"] * TB / s2)
            fixed = b["tokenizer_training_s"] * (sample / b["tokenizer_sample_mb"]) ** d
            t1, t2 = max(t1 - a["tokenizer_training_s"], 1e-3), max(t2 - b["tokenizer_training_s"], 1e-3)
            notes.append(
                f"tokenize's tokenizer training follows c*sample^{d:.2f} and is taken at a {sample:g} MB sample "
                f"({fixed:.0f} s, on one machine, not divided); the rest of tokenize as every stage"
            )
        e = math.log(t2 / t1) / math.log(s2 / s1)
        power = t2 * (TB / s2) ** e
        # fixed + per-MB through the same two runs: an exponent under 1 between two sizes is mostly a
        # fixed cost, and a*size^b extrapolated 1,000x would make every MB cheaper the more there is
        per_mb = max((t2 - t1) / (s2 - s1), 0.0)
        affine = (t1 - per_mb * s1) + per_mb * TB
        power_hours[stage] = round((power / (64 / cores) + fixed) / 3600, 2)
        hours[stage] = round((max(power, affine) / (64 / cores) + fixed) / 3600, 2)
    speed = machine_speed([r1, r2])
    if speed is not None:
        notes.append(
            f"this machine ran the calibration loop (bench/calibration.py) at {speed:.2f}x the reference machine's "
            f"speed around these two runs; at the reference speed the projection is "
            f"{sum(hours.values()) * speed:.1f} h (a slower day slows every stage alike: under CPU contention "
            "the rules stage and the loop both ran at 0.49x)"
        )
    return {
        "hours_by_stage": hours,
        "hours": round(sum(hours.values()), 1),
        "hours_power_law": round(sum(power_hours.values()), 1),
        "machine_speed": speed,
        "hours_at_reference_speed": round(sum(hours.values()) * speed, 1) if speed is not None else None,
        "assumptions": [
            f"each stage's wall time is the larger of a*size^b and fixed + per-MB cost, both through the {s1:g} and "
            f"{s2:g} MB runs (b per stage as measured; a*size^b alone gives {sum(power_hours.values()):.1f} h)",
            *notes,
            f"64 cores do the work of {cores} here {64 // cores}x faster (perfect scaling, corpus-wide steps too)",
            "the bench corpus's hosts grow with size; its text is rewritten copies of the shared web pages",
            "memory and disk are not limits (see the peaks: they are measured, not projected)",
        ],
    }


def machine_speed(runs: list[dict[str, Any]]) -> float | None:
    """This machine's speed during the runs as a share of the reference machine's (calibration loop
    before and after each run); None for results measured without it."""
    values = [v for r in runs for v in r.get("calibration_mb_per_s", [])]
    return round(sum(values) / len(values) / REFERENCE_MB_PER_S, 3) if values else None


def _sample_cap() -> float:
    """`tokenize.sample_mb` of the default pipeline."""
    import yaml

    config = yaml.safe_load((ROOT / "pipelines" / "ja.yaml").read_text(encoding="utf-8"))
    return float(next(s for s in config["stages"] if s["stage"] == "tokenize")["sample_mb"])


def _size_tables(results: dict[str, Any]) -> list[str]:
    """Per stage and per size: wall time, growth exponents, peaks; per size: disk and files."""
    sizes = results["sizes_mb"]
    lines: list[str] = []
    head = (
        "| stage | "
        + " | ".join(f"{s:g} MB wall s" for s in sizes)
        + " | growth exponents | driver peak MB | worker peak MB |"
    )
    lines += [head, "|" + "---|" * (len(sizes) + 4)]
    for stage, exps in results.get("exponents", {}).items():
        walls = [f"{r['stages'][stage]['wall_s']:.1f}" for r in results["runs"]]
        drivers = " / ".join(f"{r['stages'][stage]['driver_peak_mb'] or 0:.0f}" for r in results["runs"])
        workers = " / ".join(f"{r['stages'][stage]['worker_peak_mb'] or 0:.0f}" for r in results["runs"])
        lines.append(f"| {stage} | " + " | ".join(walls) + f" | {', '.join(map(str, exps))} | {drivers} | {workers} |")
    lines += ["", "| size MB | run wall s | peak temporary disk MB | × raw | peak files |", "|---|---|---|---|---|"]
    for size, run in zip(sizes, results["runs"], strict=True):
        disk = run["peak_disk_mb"]
        lines.append(f"| {size:g} | {run['wall_s']} | {disk} | {disk / size:.2f} | {run['peak_files']} |")
    dedup = [r["stages"].get("dedup", {}) for r in results["runs"]]
    if all("candidate_pairs" in d for d in dedup):
        lines += [
            "",
            "Dedup's corpus-wide step against the pairs it had to resolve (candidate / exact-copy pairs): "
            + " / ".join(
                f"{d['corpus_wide_s']:.1f} s for {d['candidate_pairs']:,} / {d['exact_pairs']:,}" for d in dedup
            )
            + ".",
        ]
    trained = [r["stages"].get("tokenize", {}) for r in results["runs"]]
    if all("tokenizer_training_s" in t for t in trained):
        lines += [
            "",
            "Tokenizer training inside tokenize (its sample is capped by `tokenize.sample_mb`): "
            + " / ".join(f"{t['tokenizer_sample_mb']:g} MB in {t['tokenizer_training_s']:.1f} s" for t in trained)
            + ".",
        ]
    return lines


def markdown(results: dict[str, Any]) -> str:
    sizes = results["sizes_mb"]
    lines = [f"# Scale benchmark {results['date']} ({results['cores']} cores)", ""]
    if len(sizes) >= 2:
        lines += _size_tables(results)
    if results.get("small_files"):
        sf, run = results["small_files"], results["small_files"]["run"]
        lines += [
            "",
            f"{sf['files']:,} one-record files: {run['wall_s']} s, {run['stages']['ingest']['shards']} shards, "
            f"peak temporary disk {run['peak_disk_mb']} MB, peak files {run['peak_files']}; per stage wall s "
            "(driver / worker peak MB): "
            + ", ".join(
                f"{name} {st['wall_s']:.1f} ({st['driver_peak_mb'] or 0:.0f} / {st['worker_peak_mb'] or 0:.0f})"
                for name, st in run["stages"].items()
            )
            + ".",
        ]
    p = results.get("projection")
    if p is None:
        return "\n".join(lines) + "\n"
    lines += ["", f"Projected 1 TB on 64 cores: **{p['hours']} h** ({p['hours_by_stage']})."]
    if p.get("hours_at_reference_speed") is not None:
        lines += [
            "",
            f"At the reference machine speed (this machine ran at {p['machine_speed']}x of it): "
            f"**{p['hours_at_reference_speed']} h**.",
        ]
    lines += ["", "Assumptions:"]
    lines += [f"- {a}" for a in p["assumptions"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mb", type=float, nargs="*", default=[50.0, 150.0, 450.0], help="corpus sizes; none: small files only"
    )
    parser.add_argument("--small-files", type=int, default=20_000, help="one-record files made from a corpus (0: none)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--tag", default="", help="appended to the results' file name (a repeat on the same day)")
    parser.add_argument("--reproject", type=Path, help="recompute exponents and projection of a results .json")
    args = parser.parse_args()
    if args.reproject:
        results = json.loads(args.reproject.read_text())
        results["exponents"] = exponents(results["sizes_mb"], results["runs"])
        results["projection"] = projection(results["sizes_mb"], results["runs"], results["cores"])
        args.reproject.write_text(json.dumps(results, indent=2) + "\n")
        args.reproject.with_suffix(".md").write_text(markdown(results))
        print(markdown(results))
        return
    sizes = sorted(args.mb)
    cores = os.cpu_count() or 1
    results: dict[str, Any] = {"date": date.today().isoformat(), "cores": cores, "sizes_mb": sizes, "runs": []}
    with tempfile.TemporaryDirectory(prefix="scale-") as tmp:
        for size in sizes:
            folder = bench_corpus.build(size, ROOT / "bench" / ".cache" / f"corpus-{size:g}mb-hosts", grow_hosts=True)
            run = run_pipeline(folder, Path(tmp) / f"out-{size:g}")
            results["runs"].append(run)
            print(
                f"{size:g} MB: {run['wall_s']} s, disk {run['peak_disk_mb']} MB, files {run['peak_files']}", flush=True
            )
        if args.small_files:
            if not sizes:  # the records come from the 450 MB corpus (about 140,000 of them)
                folder = bench_corpus.build(450, ROOT / "bench" / ".cache" / "corpus-450mb-hosts", grow_hosts=True)
            files = small_files(folder, Path(tmp) / "small", args.small_files)
            results["small_files"] = {"files": args.small_files, "run": run_pipeline(files, Path(tmp) / "out-small")}
            print(f"{args.small_files} files: {results['small_files']['run']['wall_s']} s", flush=True)
    if len(sizes) >= 2:
        results["exponents"] = exponents(sizes, results["runs"])
        results["projection"] = projection(sizes, results["runs"], cores)
    text = markdown(results)
    print(text)
    if not args.no_write:
        tag = ("" if sizes else "-small-files") + (f"-{args.tag}" if args.tag else "")
        dest = ROOT / "bench" / "results" / f"scale-{results['date']}{tag}"
        dest.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
        dest.with_suffix(".md").write_text(text)
        print(f"wrote {dest}.json and .md")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
