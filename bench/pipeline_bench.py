"""`make bench` / `make bench-quick`: every stage and the whole pipeline, 1 and N workers, and the peers.

1. Corpus: bench/corpus.py grows ../shared/data/web to --mb (200; quick 8) with perturbed copies,
   cached in bench/.cache/.
2. One-time training, cached per corpus and reported apart: the quality model (`cleaning quality
   train` on annotations/), genre embeddings (normalize + genres on the corpus) and the tokenizer
   (`cleaning tokenizer train` on that run's shards, sampled across clusters).
3. Timed runs of pipelines/ja.yaml with those models, through Ray with each worker count: per stage
   wall time (per-shard pass + corpus-wide step + closing step), MB of text in, MB/s and docs/s per
   core, the peak resident memory of a worker on one unit of work and of the driver, scaling
   efficiency (rate with N workers / (N x rate with 1)), and end to end: raw corpus MB per second
   per core over the whole run. A projection for 1 TB on 64 cores follows from the per-core rate.
4. Peers (not in quick mode): the first --peer-mb of the corpus as JSONL; our comparable stages each
   on exactly that input (normalize + the stage, one process), then datatrove and HojiChar in
   bench/.venv-peers (made here, pinned) via bench/peers_worker.py, one process. Time ratios and the
   text each keeps.
5. A calibration loop (NFKC + JSON over fixed text) times this machine's single-core speed, so runs
   on noisy machines compare as ratios to it.
Writes bench/results/<date>-<host>[-quick].{json,md}.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

import corpus as bench_corpus  # bench/corpus.py (this script's folder is on sys.path)
from calibration import calibrate
from peer_venv import PEERS, peer_python
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
RESULTS = ROOT / "bench" / "results"
PIPELINE = ROOT / "pipelines" / "ja.yaml"
CLEANING = Path(sys.executable).parent / "cleaning"
TB_MB = 1_000_000


def log(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def run_pipeline(
    pipeline: Path, inputs: list[str], out: Path, workers: int, use_ray: bool, overrides: list[str]
) -> dict[str, Any]:
    opts = RunOptions(inputs, out, workers=workers, use_ray=use_ray, progress=False)
    return Runner(load_pipeline(pipeline, overrides), opts, Console(file=io.StringIO())).run()


# -- one-time training ------------------------------------------------------------------


def train_models(corpus: Path, quick: bool) -> dict[str, Any]:
    """Quality model, genre embeddings and tokenizer for this corpus; cached in bench/.cache/."""
    folder = CACHE / f"models-{corpus.name}{'-quick' if quick else ''}"
    info_path = folder / "models.json"
    if info_path.is_file():
        return json.loads(info_path.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    info: dict[str, Any] = {}
    started = time.perf_counter()
    quality = folder / "quality.bin"
    log("training the quality model on annotations/ …")
    subprocess.run(
        [str(CLEANING), "quality", "train", "-a", str(ROOT / "annotations"), "--out", str(quality)],
        check=True,
        capture_output=True,
    )
    info["quality_seconds"] = round(time.perf_counter() - started, 1)
    started = time.perf_counter()
    log("training genre embeddings (normalize + genres) …")
    train_mb = 2 if quick else 10
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        spec = Path(tmp) / "genres.yaml"
        spec.write_text(f"stages:\n  - normalize\n  - stage: genres\n    train_mb: {train_mb}\n")
        run_pipeline(spec, [f"{corpus}/*.jsonl.gz"], Path(tmp) / "out", os.cpu_count() or 1, True, [])
        artifacts = next(Path(tmp, "out").glob("*-genres/_prepare/artifacts"))
        shutil.copyfile(artifacts / "embeddings.bin", folder / "embeddings.bin")
        shutil.copyfile(artifacts / "embeddings.pieces.model", folder / "embeddings.pieces.model")
        info["genres_seconds"] = round(time.perf_counter() - started, 1)
        started = time.perf_counter()
        log("training the tokenizer …")
        vocab, sample = (8000, 4) if quick else (32000, 20)
        subprocess.run(
            [
                str(CLEANING),
                "tokenizer",
                "train",
                str(Path(tmp) / "out"),
                "--out",
                str(folder / "tokenizer.model"),
                "--vocab-size",
                str(vocab),
                "--sample-mb",
                str(sample),
                "--no-ray",
            ],
            check=True,
            capture_output=True,
        )
        info["tokenizer_seconds"] = round(time.perf_counter() - started, 1)
    info["overrides"] = [
        f"quality.model={quality}",
        f"genres.embeddings={folder / 'embeddings.bin'}",
        f"tokenize.model={folder / 'tokenizer.model'}",
    ]
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return info


# -- our timed runs ---------------------------------------------------------------------


def stage_rows(summary: dict[str, Any], workers: int, raw_mb: float) -> list[dict[str, Any]]:
    rows = []
    for s in summary["stages"]:
        mb, wall = s["bytes_in"] / 1e6, s["wall_seconds"]
        rows.append(
            {
                "stage": s["stage"],
                "workers": workers,
                "docs": s["docs_in"],
                "mb": round(mb, 1),
                "wall_s": wall,
                "pass_s": round(wall - s.get("prepare_seconds", 0) - s.get("finish", {}).get("seconds", 0), 2),
                "prepare_s": s.get("prepare_seconds", 0),
                "finish_s": s.get("finish", {}).get("seconds", 0),
                "mb_per_s_per_core": round(mb / wall / workers, 2) if wall else None,
                "raw_mb_per_s_per_core": round(raw_mb / wall / workers, 2) if wall else None,
                "docs_per_s_per_core": round(s["docs_in"] / wall / workers, 1) if wall else None,
                "peak_rss_mb_worker": s.get("peak_rss_mb"),
                "peak_rss_mb_driver": s.get("driver_peak_rss_mb"),
            }
        )
    return rows


def timed_runs(corpus: Path, overrides: list[str], workers: list[int], shard_mb: float) -> dict[str, Any]:
    raw_mb = json.loads((corpus / "corpus.json").read_text())["text_mb"]
    rows, totals = [], []
    for n in workers:
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            log(f"pipelines/ja.yaml with {n} worker(s) on {raw_mb} MB …")
            started = time.perf_counter()
            summary = run_pipeline(
                PIPELINE,
                [f"{corpus}/*.jsonl.gz"],
                Path(tmp) / "out",
                n,
                True,
                [f"input.shard_mb={shard_mb}", *overrides],
            )
            wall = time.perf_counter() - started
        stage_total = sum(s["wall_seconds"] for s in summary["stages"])
        rows += stage_rows(summary, n, raw_mb)
        totals.append(
            {
                "workers": n,
                "raw_mb": raw_mb,
                "wall_s": round(wall, 1),
                "stages_wall_s": round(stage_total, 1),
                "raw_mb_per_s_per_core": round(raw_mb / wall / n, 3),
                "docs_in": summary["stages"][0]["docs_in"],
                "docs_out": summary["stages"][-1]["kept"],
                "kept_text_share": round(summary["stages"][-1]["chars_out"] / summary["stages"][0]["chars_in"], 3),
                "peak_rss_mb_worker": max(s.get("peak_rss_mb") or 0 for s in summary["stages"]),
                "peak_rss_mb_driver": max(s.get("driver_peak_rss_mb") or 0 for s in summary["stages"]),
            }
        )
    base = {r["stage"]: r for r in rows if r["workers"] == workers[0] == 1}
    for r in rows:
        b = base.get(r["stage"])
        if b and r["workers"] > 1 and b["wall_s"]:
            r["scaling_efficiency"] = round(b["wall_s"] / (r["workers"] * r["wall_s"]), 2)
    one = next((t for t in totals if t["workers"] == 1), None)
    for t in totals:
        if one and t["workers"] > 1:
            t["scaling_efficiency"] = round(one["wall_s"] / (t["workers"] * t["wall_s"]), 2)
    best = totals[-1]
    hours = TB_MB / (best["raw_mb_per_s_per_core"] * 64) / 3600
    projection = {
        "per_core_rate_used": best["raw_mb_per_s_per_core"],
        "measured_with_workers": best["workers"],
        "hours_1tb_64_cores": round(hours, 2),
        "note": "projection: 1e6 MB / (measured end-to-end MB/s per core x 64) / 3600, excluding one-time "
        "training and assuming the per-core rate holds from 2 to 64 workers (measured only up to "
        f"{best['workers']} here); corpus-wide steps (dedup reduce, k-means) grow faster than linearly",
    }
    return {"stages": rows, "totals": totals, "projection": projection}


# -- peers -------------------------------------------------------------------------------


def write_subset(corpus: Path, mb: float, dest: Path) -> tuple[Path, Path]:
    """The first `mb` of the corpus as plain JSONL {id, text} (what every tool reads) and as text lines."""
    dest.mkdir(parents=True, exist_ok=True)
    jsonl, text = dest / "subset.jsonl", dest / "subset.txt"
    size = 0
    with jsonl.open("w", encoding="utf-8") as out, text.open("w", encoding="utf-8") as lines:
        for part in sorted(corpus.glob("*.jsonl.gz")):
            with gzip.open(part, "rt", encoding="utf-8") as f:
                for line in f:
                    rec = json.loads(line)
                    out.write(json.dumps({"id": rec["id"], "text": rec["text"]}, ensure_ascii=False) + "\n")
                    lines.write(rec["text"] + "\n")
                    size += len(rec["text"].encode())
                    if size >= mb * 1e6:
                        return jsonl, text
    return jsonl, text


OURS = {  # our stage that does the peer's job, each after normalize on the same input
    "rules": "  - rules",
    "quality": "  - stage: quality\n    model: {quality}",
    "dedup": "  - dedup",
    "tokenize": "  - stage: tokenize\n    model: {tokenizer}\n    part_mb: 256",
}


def ours_on_subset(subset: Path, models: dict[str, Any], tmp: Path) -> dict[str, Any]:
    paths = dict(item.split("=", 1) for item in models["overrides"])
    out = {}
    for stage, entry in OURS.items():
        spec = tmp / f"{stage}.yaml"
        body = entry.format(quality=paths["quality.model"], tokenizer=paths["tokenize.model"])
        spec.write_text(f"input: {{shard_mb: 1000}}\nstages:\n  - normalize\n{body}\n")
        summary = run_pipeline(spec, [str(subset)], tmp / f"ours-{stage}", 1, False, [])
        s = summary["stages"][-1]
        out[stage] = {
            "seconds": s["wall_seconds"],
            "normalize_seconds": summary["stages"][1]["wall_seconds"],
            "mb_in": round(s["bytes_in"] / 1e6, 2),
            "kept_docs": s["kept"],
            "kept_chars": s["chars_out"],
        }
    return out


def peers(corpus: Path, models: dict[str, Any], mb: float, vocab: int) -> dict[str, Any]:
    python = peer_python()
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        subset, text = write_subset(corpus, mb, Path(tmp))
        log(f"ours on the {mb} MB peer subset …")
        ours = ours_on_subset(subset, models, Path(tmp))
        config = {
            "input": str(subset),
            "annotations": sorted(str(p) for p in (ROOT / "annotations").glob("*.jsonl")),
            "work": str(Path(tmp) / "peers"),
            "out": str(Path(tmp) / "peers.json"),
            "threshold": 0.8,
            "vocab_size": vocab,
            "tokenizer_text": str(text),
        }
        (Path(tmp) / "peers-config.json").write_text(json.dumps(config))
        log("datatrove and HojiChar on the same subset (bench/.venv-peers) …")
        subprocess.run(
            [str(python), str(ROOT / "bench" / "peers_worker.py"), str(Path(tmp) / "peers-config.json")],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        theirs = json.loads((Path(tmp) / "peers.json").read_text())
    return {"ours": ours, "peers": theirs, "versions": PEERS, "comparisons": compare(ours, theirs)}


def _filter_seconds(result: dict[str, Any]) -> float:
    return sum(t for name, t in result["steps"].items() if "FILTER" in name)


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per comparable step: our time / their time on the same input (< 1: we are faster)."""
    dt = theirs["datatrove_filters"]
    gopher_c4 = sum(_filter_seconds(dt[k]) for k in ("gopher_repetition", "gopher_quality", "c4_quality"))
    chars = theirs["input_chars"]
    rows = [
        (
            "rules",
            "datatrove Gopher repetition + Gopher quality + C4 (each alone, filter time)",
            gopher_c4,
            dt["gopher_c4_chained"]["kept_chars"],
        ),
        (
            "rules",
            "HojiChar Japanese filters (Compose, NFKC included)",
            theirs["hojichar"]["filters"]["seconds"],
            theirs["hojichar"]["filters"]["kept_chars"],
        ),
        (
            "quality",
            "datatrove FastTextClassifierFilter (filter time)",
            _filter_seconds(dt["fasttext"]),
            dt["fasttext"]["kept_chars"],
        ),
        (
            "dedup",
            "datatrove 4-stage MinHash (char 5-grams, 14x8)",
            theirs["datatrove_minhash"]["seconds"],
            theirs["datatrove_minhash"]["kept_chars"],
        ),
        (
            "dedup",
            "HojiChar GenerateDedupLSH + InlineDeduplicator",
            theirs["hojichar"]["dedup"]["seconds"],
            theirs["hojichar"]["dedup"]["kept_chars"],
        ),
        ("tokenize", "datatrove DocumentTokenizer (HF unigram)", theirs["datatrove_tokenize"]["seconds"], None),
    ]
    out = []
    for stage, peer, seconds, kept in rows:
        mine = ours[stage]
        out.append(
            {
                "stage": stage,
                "peer": peer,
                "ours_s": mine["seconds"],
                "peer_s": round(seconds, 3),
                "time_ratio": round(mine["seconds"] / seconds, 2) if seconds else None,
                "ours_kept_chars_share": round(mine["kept_chars"] / chars, 3),
                "peer_kept_chars_share": round(kept / chars, 3) if kept is not None else None,
            }
        )
    return out


# -- report -----------------------------------------------------------------------------


def render(result: dict[str, Any]) -> str:
    def table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        return lines + ["| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in cols) + " |" for r in rows]

    c = result["corpus"]
    lines = [
        f"# Benchmark {result['date']} on {result['host']} ({result['cpu_count']} CPUs)"
        + (" — quick" if result["quick"] else ""),
        "",
        f"Corpus: {c['text_mb']} MB of text, {c['documents']:,} documents ({c['original_pages']:,} real pages of "
        f"../shared/data/web x {c['copies']} copies, ~{c['near_duplicates_expected']:,} near-duplicates planted). "
        f"Calibration (single-core JSON + NFKC): {result['calibration_mb_per_s']} MB/s.",
        f"One-time training (excluded below): {json.dumps(result['training'])}",
        "",
        "## Stages (Ray, text MB entering each stage)",
        "",
    ]
    lines += table(
        result["runs"]["stages"],
        [
            "stage",
            "workers",
            "docs",
            "mb",
            "wall_s",
            "pass_s",
            "prepare_s",
            "finish_s",
            "mb_per_s_per_core",
            "raw_mb_per_s_per_core",
            "docs_per_s_per_core",
            "peak_rss_mb_worker",
            "peak_rss_mb_driver",
            "scaling_efficiency",
        ],
    )
    lines += ["", "## End to end (raw corpus MB per second per core, whole run)", ""]
    lines += table(
        result["runs"]["totals"],
        [
            "workers",
            "raw_mb",
            "wall_s",
            "raw_mb_per_s_per_core",
            "docs_in",
            "docs_out",
            "kept_text_share",
            "peak_rss_mb_worker",
            "peak_rss_mb_driver",
            "scaling_efficiency",
        ],
    )
    p = result["runs"]["projection"]
    lines += ["", f"**Projection** (not a measurement): 1 TB on 64 cores ≈ {p['hours_1tb_64_cores']} h. {p['note']}."]
    if result.get("peers"):
        pr = result["peers"]
        lines += [
            "",
            f"## Peers on the same {pr['peers']['input_mb']} MB ({pr['peers']['input_docs']:,} documents), "
            f"one process each; versions {json.dumps(pr['versions'])}",
            "",
        ]
        lines += table(
            pr["comparisons"],
            ["stage", "peer", "ours_s", "peer_s", "time_ratio", "ours_kept_chars_share", "peer_kept_chars_share"],
        )
        lines += ["", "time_ratio = our seconds / peer seconds on identical input (below 1: we are faster)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="8 MB, no peers: the before/after guard (< 2 min)")
    parser.add_argument("--mb", type=float, default=None, help="corpus size (default 200; quick 8)")
    parser.add_argument("--workers", type=int, nargs="+", default=None, help="default: 1 and all CPUs")
    parser.add_argument("--shard-mb", type=float, default=None, help="default: corpus/16 so every worker has work")
    parser.add_argument("--peer-mb", type=float, default=10.0, help="peer comparison input size")
    parser.add_argument("--no-peers", action="store_true")
    args = parser.parse_args()
    mb = args.mb or (8.0 if args.quick else 200.0)
    cpus = os.cpu_count() or 1
    workers = args.workers or sorted({1, cpus})
    CACHE.mkdir(parents=True, exist_ok=True)
    calibration = calibrate()
    corpus = bench_corpus.build(mb, CACHE / f"corpus-{mb:g}mb")
    info = json.loads((corpus / "corpus.json").read_text())
    models = train_models(corpus, args.quick)
    shard_mb = args.shard_mb or max(0.5, mb / 16)
    result: dict[str, Any] = {
        "date": date.today().isoformat(),
        "host": platform.node(),
        "cpu_count": cpus,
        "python": platform.python_version(),
        "quick": args.quick,
        "calibration_mb_per_s": calibration,
        "corpus": {
            k: info[k] for k in ("text_mb", "documents", "copies", "original_pages", "near_duplicates_expected")
        },
        "shard_mb": shard_mb,
        "training": {k: v for k, v in models.items() if k.endswith("seconds")},
        "runs": timed_runs(corpus, models["overrides"], workers, shard_mb),
    }
    if not args.quick and not args.no_peers:
        result["peers"] = peers(corpus, models, args.peer_mb, 32000)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"{result['date']}-{result['host']}{'-quick' if args.quick else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    text = render(result)
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"written: {stem}.json and {stem}.md")


if __name__ == "__main__":
    main()
