"""Evaluate the genres stage and the balance report (numbers for the genres issue).

Usage: python bench/genres_eval.py [--k 50] [--variants default,plain,...] [--no-browser]
Corpus: every file of ../shared/data/web/ and ../shared/data/clean/ (~20k documents), normalised.
1. For each variant, `normalize + genres` run in a child process (--no-ray, one core): embedding
   training time and sample, k-means fit time, assignment throughput, peak RSS of the process;
   then cluster purity and NMI against livedoor's 9 categories on the livedoor documents only.
2. Baseline: TF-IDF over character 2-3-grams + the same MiniBatchKMeans (sparse, and after SVD).
3. The report at k (and at k = 10,000 with the same embeddings): HTML size, build time, and load
   time in headless Chromium when Playwright and /usr/bin/chromium are present.
Writes bench/results/genres-eval-DATE.{json,md}. No text of ../shared is written anywhere.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
# Each variant is a list of --set overrides; {model:NAME} reuses the embeddings variant NAME trained.
VARIANTS = {
    "pieces": [],  # the default: sentencepiece pieces, cbow window 1000, SIF, common direction removed, 10 MB sample
    "skipgram-w5-e5": ["genres.word_model=skipgram", "genres.window=5", "genres.epoch=5"],  # default before 11-30
    "pieces-plain-mean": ["genres.sif_a=0", "genres.remove_common=false", "genres.embeddings={model:pieces}"],
    "pieces-sif-only": ["genres.remove_common=false", "genres.embeddings={model:pieces}"],
    "pieces-train-2MB": ["genres.train_mb=2"],
    "pieces-train-5MB": ["genres.train_mb=5"],
    "pieces-train-20MB": ["genres.train_mb=20"],
    "cbow-w200-e10": ["genres.word_model=cbow", "genres.window=200", "genres.epoch=10"],
    "cbow-w1000-e10": ["genres.word_model=cbow", "genres.window=1000", "genres.epoch=10"],
    "lsa": ["genres.method=lsa"],  # TF-IDF of pieces + hashed piece bigrams, SVD 100 (no fastText)
    "lsa-bits14": ["genres.method=lsa", "genres.lsa_bits=14"],
    "lsa-bits16": ["genres.method=lsa", "genres.lsa_bits=16"],
    "chars": ["genres.representation=chars"],
    "chars-plain-mean": [
        "genres.representation=chars",
        "genres.sif_a=0",
        "genres.remove_common=false",
        "genres.embeddings={model:chars}",
    ],
}
PIPELINE = """stages:
  - stage: normalize
  - stage: genres
"""


def inputs() -> list[str]:
    return [str(p) for d in ("web", "clean") for p in sorted((SHARED / d).glob("*.jsonl.gz"))]


def run_variant(out: Path, overrides: list[str]) -> dict:
    """One `cleaning run` in a child process; its peak RSS from VmHWM (bench/peak.py)."""
    pipeline = out.parent / "genres-eval.yaml"
    pipeline.write_text(PIPELINE)
    args = [
        sys.executable,
        str(ROOT / "bench" / "peak.py"),
        str(out.parent / f"{out.name}.peak"),
        "-m",
        "cleaning",
        "run",
        str(pipeline),
        "--no-ray",
        "--no-progress",
        "-o",
        str(out),
    ]
    for path in inputs():
        args += ["-i", path]
    for item in overrides:
        args += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status = proc.wait()
    wall = time.perf_counter() - started
    if status:
        raise SystemExit(f"run failed: {' '.join(overrides)}\n{proc.stderr.read()}")
    stage_dir = next(p for p in out.iterdir() if p.name.endswith("-genres"))
    stats = json.loads((stage_dir / "stats.json").read_text())
    info = json.loads((stage_dir / "_prepare" / "artifacts" / "genres.json").read_text())
    return {
        "overrides": overrides,
        "wall_s": round(wall, 1),
        "peak_rss_mb": int((out.parent / f"{out.name}.peak").read_text()),
        "docs": stats["docs_in"],
        "train": info.get("training"),
        "fit": {k: v for k, v in info["fit"].items() if k != "fit_sizes"},
        "assign_docs_per_s": round(stats["docs_in"] / max(stats["seconds"], 1e-9)),
        "assign_mb_per_s": round(stats["bytes_in"] / 1e6 / max(stats["seconds"], 1e-9), 1),
        **scores(stage_dir),
    }


def model_of(out: Path) -> Path:
    stage_dir = next(p for p in out.iterdir() if p.name.endswith("-genres"))
    return stage_dir / "_prepare" / "artifacts" / "embeddings.bin"


def livedoor_labels(stage_dir: Path) -> tuple[list[str], np.ndarray]:
    table = pa.concat_tables(pq.read_table(p, columns=["meta", "cluster", "source"]) for p in shards(stage_dir))
    gold, clusters = [], []
    for meta, cluster, source in zip(*(table[c].to_pylist() for c in ("meta", "cluster", "source")), strict=True):
        if "livedoor" in source:
            gold.append(json.loads(meta)["category"])
            clusters.append(cluster)
    return gold, np.array(clusters)


def shards(stage_dir: Path) -> list[Path]:
    return sorted((stage_dir / "shards").glob("*.parquet"))


def purity(gold: list[str], labels: np.ndarray) -> float:
    by: dict[int, Counter[str]] = {}
    for g, c in zip(gold, labels.tolist(), strict=True):
        by.setdefault(c, Counter())[g] += 1
    return sum(c.most_common(1)[0][1] for c in by.values()) / len(gold)


def scores(stage_dir: Path) -> dict:
    from sklearn.metrics import normalized_mutual_info_score

    gold, labels = livedoor_labels(stage_dir)
    return {
        "livedoor_docs": len(gold),
        "purity": round(purity(gold, labels), 4),
        "nmi": round(normalized_mutual_info_score(gold, labels), 4),
    }


def tfidf_baseline(stage_dir: Path, k: int) -> dict:
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import normalized_mutual_info_score
    from sklearn.preprocessing import normalize

    table = pa.concat_tables(pq.read_table(p, columns=["text", "source", "meta"]) for p in shards(stage_dir))
    texts = table["text"].to_pylist()
    is_ld = np.array(["livedoor" in s for s in table["source"].to_pylist()])
    gold = [json.loads(m)["category"] for m, ld in zip(table["meta"].to_pylist(), is_ld, strict=True) if ld]
    started = time.perf_counter()
    x = TfidfVectorizer(analyzer="char", ngram_range=(2, 3), max_features=200_000, sublinear_tf=True).fit_transform(
        texts
    )
    vectorize = time.perf_counter() - started
    out = {"vectorize_s": round(vectorize, 1), "docs_per_s": round(len(texts) / vectorize)}
    for name, matrix in (("sparse", x), ("svd100", None)):
        started = time.perf_counter()
        if matrix is None:
            matrix = normalize(TruncatedSVD(100, random_state=0).fit_transform(x))
        km = MiniBatchKMeans(n_clusters=k, random_state=0, batch_size=4096, n_init=3).fit(matrix)
        labels = km.labels_[is_ld]
        out[name] = {
            "fit_s": round(time.perf_counter() - started, 1),
            "purity": round(purity(gold, labels), 4),
            "nmi": round(normalized_mutual_info_score(gold, labels), 4),
        }
    return out


def report_numbers(out: Path, browser: bool) -> dict:
    from cleaning.report.build import ReportOptions, build_report

    overview = build_report(ReportOptions(out), lambda fn, items, label: [fn(i) for i in items], log=lambda s: None)
    result = {
        "k": overview["k"],
        "html_mb": round(overview["files"]["html_bytes"] / 1e6, 2),
        "build_s": overview["seconds"],
    }
    if browser:
        result |= browser_load(Path(overview["files"]["html"]))
    return result


def browser_load(html: Path) -> dict:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"browser": "playwright not installed"}
    if not Path("/usr/bin/chromium").exists():
        return {"browser": "chromium not installed"}
    from tests.browser import CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        started = time.perf_counter()
        page.goto(html.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        ready = time.perf_counter() - started
        nav = page.evaluate("JSON.stringify(performance.getEntriesByType('navigation')[0])")
        started = time.perf_counter()
        page.click("#cluster-head th[data-key='quality_median']")
        page.fill("#filter", "a")
        sort_filter = time.perf_counter() - started
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : null")
        browser.close()
    timing = json.loads(nav)
    return {
        "load_to_ready_s": round(ready, 2),
        "dom_content_loaded_ms": round(timing["domContentLoadedEventEnd"]),
        "sort_and_filter_s": round(sort_filter, 2),
        "js_heap_mb": round(heap / 1e6, 1) if heap else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: this evaluation needs ../shared/data")
    results: dict = {"date": date.today().isoformat(), "k": args.k, "inputs": [Path(p).name for p in inputs()]}
    with tempfile.TemporaryDirectory(prefix="genres-eval-") as tmp:
        runs = {}
        for name in args.variants.split(","):
            out = Path(tmp) / name
            overrides = [
                re.sub(r"\{model:([\w-]+)\}", lambda m: str(model_of(Path(tmp) / m.group(1))), o)
                for o in VARIANTS[name]
            ]
            runs[name] = run_variant(out, [f"genres.k={args.k}", *overrides])
            print(name, json.dumps(runs[name]), flush=True)
        results["variants"] = runs
        first = Path(tmp) / args.variants.split(",")[0]
        stage_dir = next(p for p in first.iterdir() if p.name.endswith("-genres"))
        results["tfidf_baseline"] = tfidf_baseline(stage_dir, args.k)
        print("tfidf", json.dumps(results["tfidf_baseline"]), flush=True)
        results["report"] = {f"k={args.k}": report_numbers(first, not args.no_browser)}
        big = Path(tmp) / "k10000"
        results["k10000_run"] = run_variant(big, ["genres.k=10000", f"genres.embeddings={model_of(first)}"])
        results["report"]["k=10000"] = report_numbers(big, not args.no_browser)
        print("report", json.dumps(results["report"]), flush=True)
    dest = ROOT / "bench" / "results" / f"genres-eval-{results['date']}.json"
    dest.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    dest.with_suffix(".md").write_text(markdown(results))
    print(f"wrote {dest} and {dest.with_suffix('.md')}")


def markdown(r: dict) -> str:
    lines = [
        f"# Genres evaluation {r['date']} (k = {r['k']}, {r['variants'][next(iter(r['variants']))]['docs']:,} docs)",
        "",
        "| variant | purity | NMI | train s (sample chars) | fit s | assign docs/s/core | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in r["variants"].items():
        train = v["train"] or {}
        lines.append(
            f"| {name} | {v['purity']:.3f} | {v['nmi']:.3f} | {train.get('seconds', '-')} "
            f"({train.get('sample_chars', 0) / 1e6:.1f} M) | {v['fit']['seconds']} | {v['assign_docs_per_s']:,} "
            f"| {v['peak_rss_mb']} |"
        )
    b = r["tfidf_baseline"]
    for name in ("sparse", "svd100"):
        lines.append(
            f"| TF-IDF char 2-3 ({name}) | {b[name]['purity']:.3f} | {b[name]['nmi']:.3f} | "
            f"{b['vectorize_s']} (vectorise) | {b[name]['fit_s']} | {b['docs_per_s']:,} | - |"
        )
    lines += ["", "| report | HTML MB | build s | load to ready s | DOMContentLoaded ms |", "|---|---|---|---|---|"]
    for name, rep in r["report"].items():
        lines.append(
            f"| {name} | {rep['html_mb']} | {rep['build_s']} | {rep.get('load_to_ready_s', '-')} | "
            f"{rep.get('dom_content_loaded_ms', '-')} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
