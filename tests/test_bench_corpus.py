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
    text = {(d["id"].split("~")[0], int(d["id"].split("~")[1]) if "~" in d["id"] else 0): d["text"] for d in docs}
    copies = [key for key in text if key[1] > 0][:300]
    near = [key for key in copies if jaccard(text[key], text[(key[0], key[1] - 1)]) >= 0.8]
    assert 0.15 < len(near) / len(copies) < 0.4  # about a quarter re-crawl the page's previous copy
    # a re-crawl of a rewritten page joins that page's group, not the original's: groups do not grow
    # with the number of copies
    second = [key for key in text if key[1] == 2][:400]
    after_new = [
        (page, n)
        for page, n in second
        if jaccard(text[(page, n)], text[(page, n - 1)]) >= 0.8 and jaccard(text[(page, n - 1)], text[(page, 0)]) < 0.5
    ]
    assert after_new and all(jaccard(text[key], text[(key[0], 0)]) < 0.8 for key in after_new)
    stamp = (out / "corpus.json").stat().st_mtime_ns
    bench_corpus.build(3.0, out)  # same request: reused, not rewritten
    assert (out / "corpus.json").stat().st_mtime_ns == stamp
