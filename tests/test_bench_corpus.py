"""The benchmark corpus (bench/corpus.py): real pages grown by perturbed copies, with planted near-duplicates."""

from __future__ import annotations

import gzip
import importlib.util
import json
from pathlib import Path

from cleaning.dedup.minhash import shingles

_spec = importlib.util.spec_from_file_location("bench_corpus", Path(__file__).parent.parent / "bench" / "corpus.py")
assert _spec and _spec.loader
bench_corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_corpus)


def jaccard(a: str, b: str) -> float:
    x, y = set(shingles(a, 5)), set(shingles(b, 5))
    return len(x & y) / max(1, len(x | y))


def test_corpus_has_the_size_copies_and_near_duplicates(tmp_path: Path, shared_data: Path) -> None:
    out = bench_corpus.build(3.0, tmp_path / "c")
    info = json.loads((out / "corpus.json").read_text())
    assert 3.0 <= info["text_mb"] < 3.2 and info["copies"] >= 3  # the original and at least two rewrites
    docs = []
    for f in sorted(out.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as lines:
            docs += [json.loads(line) for line in lines]
    assert len(docs) == info["documents"] and len({d["id"] for d in docs}) == len(docs)
    originals = {d["id"]: d["text"] for d in docs if "~" not in d["id"]}
    copies = [d for d in docs if "~" in d["id"]]
    near = sum(jaccard(d["text"], originals[d["id"].split("~")[0]]) >= 0.8 for d in copies[:300])
    assert 0.15 < near / 300 < 0.4  # about a quarter are near-duplicates of their original
    stamp = (out / "corpus.json").stat().st_mtime_ns
    bench_corpus.build(3.0, out)  # same request: reused, not rewritten
    assert (out / "corpus.json").stat().st_mtime_ns == stamp
