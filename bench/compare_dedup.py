"""Compare our dedup stage with datatrove's and HojiChar's MinHash dedup on the same input, in one run.

Usage (from the project root, with the project's venv):
    .venv/bin/python bench/compare_dedup.py [--thresholds 0.8] [--corpora crawl,livedoor] [--no-write]

For each corpus of bench/dedup_eval.py (3,500 crawl pages, livedoor news) and each threshold t:
  * truth: exact character-5-gram Jaccard of every pair (dedup_eval.ground_truth: NFKC, whitespace removed);
  * ours: `normalize + dedup` in a child process (dedup_eval.run_dedup); time = the dedup stage's wall seconds;
  * peers run in bench/.venv-peers (gitignored, pinned versions below), in a child process, one process, numpy
    threads = 1. They get the text the truth is computed on (NFKC, whitespace removed; prepared here, untimed),
    through a temporary JSONL file:
      - datatrove: the 4-stage MinHash pipeline (Signature -> Buckets -> Cluster -> Filter) with JsonlReader and
        LocalPipelineExecutor (workers=1, on a temporary folder), character 5-grams (a character WordTokenizer passed
        as `language`; datatrove ships none), its text normalisation switched off; two band settings: its default
        14 x 8 and datasketch's optimal (b, r) for t at 112 hashes. Time = the whole 4-stage run (incl. its I/O);
      - HojiChar: Compose([GenerateDedupLSH(threshold=t), InlineDeduplicator()]) applied per document (its
        documented in-memory use; char-level 5-grams, 500 permutations by default). Time = the Compose loop.
Scores (dedup_eval.score): pair and removal precision/recall from (removed, kept) pairs. datatrove gives the cluster
of each removed document (save_cluster_id), so kept = the cluster's surviving document. HojiChar only marks a
document as rejected: its kept copy is rebuilt after timing from its LSH keys (the earliest document that holds one
of its keys, followed to a surviving document). For every tool also document-level figures that need no pairing:
doc precision = share of removed documents with some partner J >= t; doc recall = removed-with-partner / ideal
removals (can exceed 1 when a tool removes every member of a group).
chars/s uses the same numerator for every tool (our dedup stage's chars_in), so ratios of chars/s equal time ratios.
Writes bench/results/dedup-compare-<date>.{json,md}; only numbers and document indices, never text of ../shared.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from peer_venv import PEERS, peer_python  # bench/peer_venv.py (this script's folder is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
DATATROVE_HASHES = 112  # datatrove's default signature size (14 buckets x 8 hashes)

# Runs inside bench/.venv-peers, never in the project's venv. argv[1]: JSON config
# {"tool", "input" (JSONL of {"id": "dNNNNNN", "text"}), "work" (temp dir), "out" (result JSON), "threshold", ...}.
PEER_WORKER = r'''
import json
import sys
import time
from pathlib import Path

cfg = json.loads(sys.argv[1])
work = Path(cfg["work"])


def idx(doc_id):
    return int(doc_id[1:])


def run_datatrove():
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.text import TextNormConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class CharTokenizer(WordTokenizer):
        """One token per non-space character: n_grams=5 then gives character 5-grams."""

        def word_tokenize(self, text):
            return [c for c in text if not c.isspace()]

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    off = TextNormConfig(lowercase=False, norm_whitespace=False, remove_punctuation=False,
                         norm_unicode_diacritics=False, norm_numbers=False)
    mc = MinhashConfig(n_grams=5, num_buckets=cfg["buckets"], hashes_per_bucket=cfg["per_bucket"], norm_config=off)
    src = str(Path(cfg["input"]).parent)
    glob = Path(cfg["input"]).name

    def reader():
        return JsonlReader(src, glob_pattern=glob, compression=None)

    def ex(steps, name, tasks=1):
        return LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name))

    stages = [
        ("signature", ex([reader(), MinhashDedupSignature(str(work / "sigs"), config=mc, language=CharTokenizer())],
                         "signature")),
        ("buckets", ex([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=mc)], "buckets",
                       tasks=mc.num_buckets)),
        ("cluster", ex([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=mc,
                                            save_cluster_id=True)], "cluster")),
        ("filter", ex([reader(),
                       MinhashDedupFilter(str(work / "remove"), load_cluster_ids=True,
                                          exclusion_writer=JsonlWriter(str(work / "removed"), compression=None)),
                       JsonlWriter(str(work / "kept"), compression=None)], "filter")),
    ]
    stage_seconds = {}
    t0 = time.perf_counter()
    for name, executor in stages:
        t = time.perf_counter()
        executor.run()
        stage_seconds[name] = round(time.perf_counter() - t, 3)
    seconds = time.perf_counter() - t0

    def read(folder):
        rows = []
        for f in sorted((work / folder).glob("*.jsonl")):
            for line in f.open(encoding="utf-8"):
                rec = json.loads(line)
                rows.append((idx(rec["id"]), rec.get("metadata", {}).get("minhash_cluster_id", -1)))
        return rows

    kept_by_cluster = {cid: i for i, cid in read("kept") if cid != -1}
    removed = read("removed")
    pairs = [[i, kept_by_cluster.get(cid, -1)] for i, cid in removed]
    return {"seconds": seconds, "stage_seconds": stage_seconds, "pairs": pairs,
            "settings": {"n_grams": 5, "num_buckets": mc.num_buckets, "hashes_per_bucket": mc.hashes_per_bucket,
                         "hash": str(mc.hash_config), "tokens": "characters (whitespace dropped)",
                         "text_norm": "off"}}


def run_hojichar():
    from hojichar import Compose, Document
    from hojichar.filters.deduplication import GenerateDedupLSH, InlineDeduplicator

    docs = [json.loads(line) for line in open(cfg["input"], encoding="utf-8")]
    gen = GenerateDedupLSH(threshold=cfg["threshold"])
    compose = Compose([gen, InlineDeduplicator()])
    rejected, keys = [], []
    t0 = time.perf_counter()
    for rec in docs:
        d = compose.apply(Document(rec["text"]))
        rejected.append(d.is_rejected)
        keys.append(d.extras.get("dedup_lsh", []))
    seconds = time.perf_counter() - t0
    # untimed: which earlier document made each rejected one a duplicate, followed to a surviving document
    first = {}
    match = {}
    for i, ks in enumerate(keys):
        holders = [first[k] for k in ks if k in first]
        if rejected[i] and holders:
            match[i] = min(holders)
        for k in ks:
            first.setdefault(k, i)
    pairs = []
    for i, m in match.items():
        while m in match:
            m = match[m]
        pairs.append([idx(docs[i]["id"]), idx(docs[m]["id"])])
    unmatched = sum(rejected) - len(match)
    return {"seconds": seconds, "pairs": pairs, "unmatched_rejections": unmatched,
            "settings": {"n_grams": 5, "num_perm": gen.num_perm, "num_bands": gen.num_bands,
                         "band_size": gen.band_size, "threshold": gen.threshold, "tokens": "characters"}}


result = {"datatrove": run_datatrove, "hojichar": run_hojichar}[cfg["tool"]]()
Path(cfg["out"]).write_text(json.dumps(result))
'''


def optimal_bands(python: Path, threshold: float, num_perm: int) -> tuple[int, int]:
    """datasketch's (b, r) for `threshold` at `num_perm` hashes (equal false positive / negative weights)."""
    code = f"from datasketch.lsh import _optimal_param as o; print(*o({threshold}, {num_perm}, 0.5, 0.5))"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return int(out[0]), int(out[1])


def run_peer(python: Path, tool: str, source: Path, tmp: Path, threshold: float, **extra: Any) -> dict:
    """Run PEER_WORKER for one tool on `source` in a child process; return its JSON plus the process wall time."""
    work = Path(tempfile.mkdtemp(prefix=f"{tool}-", dir=tmp))
    out = work / "result.json"
    cfg = {"tool": tool, "input": str(source), "work": str(work), "out": str(out), "threshold": threshold, **extra}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    started = time.perf_counter()
    proc = subprocess.run([str(python), "-c", PEER_WORKER, json.dumps(cfg)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"{tool} worker failed:\n{proc.stderr[-4000:]}")
    result = json.loads(out.read_text())
    result["process_wall_s"] = round(wall, 1)
    return result


def git_state() -> dict[str, Any]:
    """HEAD and uncommitted files of the project (read-only git commands): what "ours" ran."""

    def git(*args: str) -> str:
        proc = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return proc.stdout.rstrip("\n") if proc.returncode == 0 else "?"

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines() if line]
    return {"head": git("rev-parse", "HEAD"), "uncommitted": dirty}


def doc_level(truth: tuple, removed: list[int], t: float, ideal: int) -> dict:
    """Pairing-free figures: removed documents that have some partner with J >= t."""
    rows, cols, jac = truth
    good = jac >= t
    partnered = set(rows[good].tolist()) | set(cols[good].tolist())
    hit = sum(d in partnered for d in set(removed))
    return {
        "doc_precision": round(hit / len(set(removed)), 4) if removed else None,
        "doc_recall": round(hit / ideal, 4) if ideal else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="0.8", help="comma-separated, e.g. 0.7,0.8")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: this comparison needs ../shared/data")
    python = peer_python()
    results: dict[str, Any] = {"date": date.today().isoformat(), "peers": PEERS, "git": git_state(), "corpora": {}}
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="dedup-compare-") as tmp_name:
        tmp = Path(tmp_name)
        for name in args.corpora.split(","):
            texts = load(CORPORA[name])
            truth = ground_truth(texts)
            source = tmp / f"{name}-peers.jsonl"
            with source.open("w", encoding="utf-8") as f:
                for i, text in enumerate(texts):
                    rec = {"id": f"d{i:06d}", "text": strip(unicodedata.normalize("NFKC", text))}
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            entry: dict[str, Any] = {"docs": len(texts)}
            for t in (float(x) for x in args.thresholds.split(",")):
                out = tmp / f"{name}-{t}"
                timing, _ = run_dedup(texts, out, t)
                chars = timing["chars"]
                ours = {**score(len(texts), truth, removals(out), t), "seconds": timing["stage_seconds"]}
                ours.update(doc_level(truth, [d for d, _ in removals(out)], t, ours["ideal_removed"]))
                ours["process_wall_s"] = timing["run_wall_s"]
                tools = {"ours": {"settings": f"dedup.threshold={t}", **ours}}
                b, r = optimal_bands(python, t, DATATROVE_HASHES)
                for label, (nb, per) in (("datatrove 14x8 (default)", (14, 8)), (f"datatrove {b}x{r}", (b, r))):
                    res = run_peer(python, "datatrove", source, tmp, t, buckets=nb, per_bucket=per)
                    tools[label] = res
                tools["hojichar"] = run_peer(python, "hojichar", source, tmp, t)
                for label, res in tools.items():
                    if label != "ours":
                        pairs = [(int(a), int(b_)) for a, b_ in res.pop("pairs")]
                        res.update(score(len(texts), truth, pairs, t))
                        res.update(doc_level(truth, [a for a, _ in pairs], t, res["ideal_removed"]))
                        res["unpaired_removals"] = sum(k < 0 for _, k in pairs) + res.get("unmatched_rejections", 0)
                    res["seconds"] = round(res["seconds"], 3)
                    res["chars_per_s"] = round(chars / res["seconds"])
                    res["ours_time_over_theirs"] = round(ours["seconds"] / res["seconds"], 3)
                    rows.append({"corpus": name, "t": t, "tool": label, **res})
                    print(name, t, label, json.dumps({k: v for k, v in res.items() if k != "settings"}), flush=True)
                entry[str(t)] = {"chars": chars, "tools": tools}
            results["corpora"][name] = entry
    md = render(results, rows)
    print(md)
    if args.no_write:
        return
    dest = RESULTS / f"dedup-compare-{results['date']}"
    dest.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    dest.with_suffix(".md").write_text(md)
    print(f"wrote {dest}.json and .md")


def render(results: dict, rows: list[dict]) -> str:
    def f(v: Any) -> str:
        return "–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)

    head = [
        "corpus",
        "t",
        "tool",
        "removed",
        "ideal",
        "pair P",
        "pair R",
        "removal P",
        "removal R",
        "doc P",
        "doc R",
        "dedup s",
        "M chars/s",
        "ours/theirs time",
        "process wall s",
    ]
    dirty = ", ".join(results["git"]["uncommitted"]) or "none"
    lines = [
        f"# Dedup comparison {results['date']}: ours vs datatrove {PEERS['datatrove']} vs HojiChar {PEERS['hojichar']}",
        "",
        "One process each, same run, same documents. Peers get NFKC + whitespace-removed text (what the truth uses);",
        "our stage gets the normalize stage's output. Truth: exact character-5-gram Jaccard >= t of every pair.",
        "pair/removal P/R: dedup_eval.score on (removed, kept) pairs; doc P/R: removed documents with any partner",
        "J >= t (no pairing needed; doc R can exceed 1). HojiChar's kept copies are rebuilt from its LSH keys after",
        "timing. datatrove time = its whole 4-stage run incl. JSONL read/write; ours = the dedup stage's wall time;",
        "M chars/s = our dedup stage's input characters / that time (one core).",
        f"Ours ran from git {results['git']['head'][:12]}; uncommitted: {dirty}.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [r["corpus"], str(r["t"]), r["tool"], r["removed"], r["ideal_removed"]]
        cells += [r[k] for k in ("pair_precision", "pair_recall", "removal_precision", "removal_recall")]
        cells += [r["doc_precision"], r["doc_recall"], r["seconds"], round(r["chars_per_s"] / 1e6, 2)]
        cells += [r["ours_time_over_theirs"], r["process_wall_s"]]
        lines.append("| " + " | ".join(f(c) for c in cells) + " |")
    lines += ["", "Settings:", ""]
    seen = set()
    for r in rows:
        key = (r["tool"], json.dumps(r["settings"], sort_keys=True))
        if key not in seen:
            seen.add(key)
            lines.append(f"- {r['tool']} (t={r['t']}): `{json.dumps(r['settings'], sort_keys=True)}`")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.path[:0] = [str(BENCH), str(ROOT)]
    from dedup_eval import CORPORA, SHARED, ground_truth, load, removals, run_dedup, score

    from cleaning.dedup.minhash import strip

    main()
