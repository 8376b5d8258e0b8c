"""Evaluate the dedup stage against exact ground truth (numbers for the dedup issue).

Usage: python bench/dedup_eval.py [--thresholds 0.7,0.8]
For the 3,500 crawl pages and the livedoor news set: the exact character-5-gram Jaccard of every
pair (a sparse shingle matrix product, whitespace removed and NFKC as in the pipeline), then
`normalize + dedup` at each threshold, in a child process on one core. Reported per threshold:
- pairs: predicted = every pair inside one of our duplicate groups; truth = pairs with J >= t;
- pairs left: truth pairs of which both documents are still in the output (a chain a~b~c with
  a≁c rightly keeps a and c, so a pair can be resolved without lying inside one group);
- removals: precision = share of removed documents whose Jaccard with their kept copy is >= t;
  recall = removed documents / the number a perfect dedup removes (sum of truth-group sizes - 1);
  fewest removals = the smallest set whose removal leaves no truth pair (a minimum vertex cover of
  each truth group, exact up to 22 documents, a greedy upper bound above: `cover_exact` says which).
  A chain a~b~c with a≁c counts 2 in `ideal_removed` and 1 in `fewest_removals`; pair recall counts
  its pair (b, c) as missed when b goes as a copy of a, so `pairs_resolved` is the recall that
  matters (no pair left) and `fewest_removals` says how many of the removals were needed;
- pairs found: every pair the stage found at or above the threshold (`dedup.keep_pairs`), exact
  copies (found as a star around their first copy) closed over their copies: how well it finds
  pairs, before it chooses survivors; the pairs above count only pairs inside one removal group,
  and a chain a~b~c whose b goes as a copy of a can never hold the pair (b, c) there;
- time of the stage (its corpus-wide step dominates), characters per second.
Writes bench/results/dedup-eval-DATE.{json,md}; no text of ../shared is written anywhere.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
import unicodedata
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CORPORA = {
    "crawl": SHARED / "web" / "cc-main-2023-50_ja_pages.jsonl.gz",
    "livedoor": SHARED / "clean" / "livedoor_news.jsonl.gz",
}
PIPELINE = "stages:\n  - stage: normalize\n  - stage: dedup\n"


def load(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line).get("text") or "" for line in f]


def ground_truth(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) with its exact Jaccard of character 5-gram sets, for pairs sharing a shingle."""
    from scipy.sparse import csr_matrix, triu

    from cleaning.dedup.minhash import shingle_hashes, strip

    rows, cols = [], []
    for i, text in enumerate(texts):
        h = np.unique(shingle_hashes(strip(unicodedata.normalize("NFKC", text)), 5))
        rows.append(np.full(len(h), i))
        cols.append(h.astype(np.int64))
    r, c = np.concatenate(rows), np.concatenate(cols)
    _, c = np.unique(c, return_inverse=True)
    x = csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(texts), c.max() + 1))
    sizes = np.asarray(x.sum(axis=1)).ravel()
    inter = triu(x @ x.T, k=1).tocoo()
    jaccard = inter.data / (sizes[inter.row] + sizes[inter.col] - inter.data)
    return inter.row, inter.col, jaccard


def run_dedup(texts: list[str], out: Path, threshold: float, extra: list[str] = ()) -> tuple[dict, float]:
    source = out.parent / f"{out.name}.jsonl"
    source.write_text(
        "".join(json.dumps({"id": f"d{i:06d}", "text": t}, ensure_ascii=False) + "\n" for i, t in enumerate(texts)),
        encoding="utf-8",
    )
    pipeline = out.parent / "dedup-eval.yaml"
    pipeline.write_text(PIPELINE)
    args = [
        sys.executable,
        str(ROOT / "bench" / "peak.py"),
        str(out.parent / f"{out.name}.peak"),
        "-m",
        "cleaning",
        "run",
        str(pipeline),
        "-i",
        str(source),
        "-o",
        str(out),
        "--no-ray",
        "--no-progress",
        "--set",
        f"dedup.threshold={threshold}",
    ]
    for item in extra:
        args += ["--set", item]
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    status = proc.wait()
    if status:
        raise SystemExit(proc.stderr.read())
    wall = time.perf_counter() - started
    stats = json.loads(next(out.glob("*-dedup/stats.json")).read_text())
    return {
        "stage_seconds": stats["wall_seconds"],
        "run_wall_s": round(wall, 1),
        "peak_rss_mb": int((out.parent / f"{out.name}.peak").read_text()),
        "chars": stats["chars_in"],
    }, wall


def removals(out: Path) -> list[tuple[int, int]]:
    files = sorted((out / "rejects" / "dedup").glob("*.parquet"))
    if not files:
        return []
    table = pa.concat_tables(pq.read_table(f, columns=["id", "dup_of"]) for f in files)
    return [(int(a[1:]), int(b[1:])) for a, b in zip(table["id"].to_pylist(), table["dup_of"].to_pylist(), strict=True)]


def found_pairs(out: Path) -> list[tuple[int, int, float]]:
    """The pairs the stage found (dedup.keep_pairs), as document numbers with their Jaccard."""
    files = sorted(out.glob("*-dedup/_prepare/artifacts/pairs/*.parquet"))
    if not files:
        return []
    table = pa.concat_tables(pq.read_table(f) for f in files)
    a, b, j = table["id_a"].to_pylist(), table["id_b"].to_pylist(), table["jaccard"].to_pylist()
    return [(int(x[1:]), int(y[1:]), float(z)) for x, y, z in zip(a, b, j, strict=True)]


def found_scores(found: list[tuple[int, int, float]], truth_pairs: set[tuple[int, int]], same: list[str]) -> dict:
    """Precision and recall of the pairs found, exact copies (Jaccard 1) closed over their copies."""
    copies: dict[int, set[int]] = {}
    for a, b, j in found:
        if j >= 1.0:
            group = copies.get(a, {a}) | copies.get(b, {b})
            for d in group:
                copies[d] = group
    pairs = set()
    for a, b, _ in found:
        for x in copies.get(a, {a}):
            for y in copies.get(b, {b}):
                if x != y:
                    pairs.add((min(x, y), max(x, y)))
    for group in {id(g): g for g in copies.values()}.values():
        pairs.update((x, y) for x in group for y in group if x < y)
    right = sum(p in truth_pairs or same[p[0]] == same[p[1]] for p in pairs)
    hit = len(pairs & truth_pairs)
    return {
        "found_pairs": len(pairs),
        "found_precision": round(right / len(pairs), 4) if pairs else None,
        "found_recall": round(hit / len(truth_pairs), 4) if truth_pairs else None,
    }


def fewest_removals(nodes: list[int], edges: list[tuple[int, int]]) -> tuple[int, bool]:
    """Size of a minimum vertex cover of one connected truth group, and whether it is exact."""
    import itertools

    k = len(nodes)
    if len(edges) == k * (k - 1) // 2:  # a clique: all but one
        return k - 1, True
    if k > 22:
        cover: set[int] = set()
        for a, b in sorted(edges):
            if a not in cover and b not in cover:
                cover.update((a, b))
        return len(cover), False
    for size in range(1, k):
        for chosen in itertools.combinations(nodes, size):
            c = set(chosen)
            if all(a in c or b in c for a, b in edges):
                return size, True
    return k - 1, True


def score(
    n: int,
    truth: tuple[np.ndarray, np.ndarray, np.ndarray],
    removed: list[tuple[int, int]],
    t: float,
    same: list[str] | None = None,
    found: list[tuple[int, int, float]] | None = None,
) -> dict:
    """`same`: each document's text as compared (NFKC, whitespace removed); an exact copy counts as
    J = 1 even when too short to have a 5-gram (two documents 'GU' share no shingle)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows, cols, jac = truth
    good = jac >= t
    truth_pairs = set(zip(rows[good].tolist(), cols[good].tolist(), strict=True))
    pair_j = dict(zip(zip(rows.tolist(), cols.tolist(), strict=True), jac.tolist(), strict=True))
    groups: dict[int, set[int]] = {}
    for doc, kept in removed:
        groups.setdefault(kept, {kept}).add(doc)
    predicted = {(min(a, b), max(a, b)) for g in groups.values() for a in g for b in g if a < b}
    hit = len(predicted & truth_pairs)
    graph = coo_matrix((np.ones(int(good.sum())), (rows[good], cols[good])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    ideal = n - len(np.unique(comp))
    members: dict[int, list[int]] = {}
    for doc in {d for pair in truth_pairs for d in pair}:
        members.setdefault(int(comp[doc]), []).append(doc)
    links: dict[int, list[tuple[int, int]]] = {}
    for a, b in truth_pairs:
        links.setdefault(int(comp[a]), []).append((a, b))
    covers = [fewest_removals(sorted(m), links[c]) for c, m in members.items()]
    removal_ok = sum(
        pair_j.get((min(d, k), max(d, k)), 0.0) >= t or (same is not None and same[d] == same[k]) for d, k in removed
    )
    gone = {d for d, _ in removed}
    left = sum(a not in gone and b not in gone for a, b in truth_pairs)
    return {
        "truth_pairs": len(truth_pairs),
        **(found_scores(found, truth_pairs, same or []) if found is not None else {}),
        "predicted_pairs": len(predicted),
        "pair_precision": round(hit / len(predicted), 4) if predicted else None,
        "pair_recall": round(hit / len(truth_pairs), 4) if truth_pairs else None,
        "pairs_left": left,
        "pairs_resolved": round(1 - left / len(truth_pairs), 4) if truth_pairs else None,
        "removed": len(removed),
        "ideal_removed": int(ideal),
        "removal_precision": round(removal_ok / len(removed), 4) if removed else None,
        "removal_recall": round(min(len(removed), removal_ok) / ideal, 4) if ideal else None,
        "fewest_removals": sum(size for size, _ in covers),
        "cover_exact": all(exact for _, exact in covers),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thresholds", default="0.7,0.8")
    parser.add_argument("--set", action="append", default=[], help="extra dedup overrides, e.g. dedup.num_perm=256")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} not found: this evaluation needs ../shared/data")
    from cleaning.dedup.minhash import strip

    results: dict = {"date": date.today().isoformat(), "overrides": args.set, "corpora": {}}
    with tempfile.TemporaryDirectory(prefix="dedup-eval-") as tmp:
        for name, path in ((n, CORPORA[n]) for n in args.corpora.split(",")):
            texts = load(path)
            started = time.perf_counter()
            truth = ground_truth(texts)
            compared = [strip(unicodedata.normalize("NFKC", text)) for text in texts]
            entry: dict = {"docs": len(texts), "truth_seconds": round(time.perf_counter() - started, 1)}
            for t in (float(x) for x in args.thresholds.split(",")):
                out = Path(tmp) / f"{name}-{t}"
                timing, _ = run_dedup(texts, out, t, ["dedup.keep_pairs=true", *args.set])
                entry[str(t)] = {
                    **score(len(texts), truth, removals(out), t, compared, found_pairs(out)),
                    **timing,
                    "chars_per_s": round(timing["chars"] / timing["stage_seconds"]),
                }
                print(name, t, json.dumps(entry[str(t)]), flush=True)
            results["corpora"][name] = entry
    if args.no_write:
        return
    dest = ROOT / "bench" / "results" / f"dedup-eval-{results['date']}.json"
    dest.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
