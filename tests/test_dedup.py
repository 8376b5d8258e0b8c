"""Dedup: datasketch-identical MinHash, LSH parameters, and the corpus-wide stage over real shards."""

from __future__ import annotations

import gzip
import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasketch import MinHash, MinHashLSH

from cleaning.dedup.minhash import MinHasher, estimated_jaccard, hashfunc, lsh_params, shingles
from tests.conftest import SAMPLE, output_ids, run_pipeline

BASE = "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。"


def sample_texts(n: int) -> list[str]:
    with gzip.open(sorted(SAMPLE.glob("*.jsonl.gz"))[0], "rt", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f][:n]


def test_signatures_equal_datasketch_minhash_bit_for_bit() -> None:
    hasher = MinHasher(num_perm=64, ngram=5, seed=3)
    long = "".join(random.Random(5).choice("あいうえおかきくけこ日本語") for _ in range(70_000))  # > one batch
    texts = [*sample_texts(20), "", "短い", "ちょうど五字", BASE, long, BASE]
    sigs = hasher.signatures(texts)
    assert all(np.array_equal(hasher.signature(t), s) for t, s in zip(texts, sigs, strict=True))
    for text, sig in zip(texts, sigs, strict=True):
        m = MinHash(num_perm=64, seed=3, hashfunc=hashfunc)
        m.update_batch(shingles(text, 5))
        assert np.array_equal(m.hashvalues, sig), text[:20]
    lean = [hasher.to_datasketch(s) for s in sigs[:3]]
    assert lean[0].jaccard(lean[1]) == pytest.approx(estimated_jaccard(sigs[0], sigs[1]))


def exact_jaccard(a: str, b: str) -> float:
    sa, sb = set(shingles(a, 5)), set(shingles(b, 5))
    return len(sa & sb) / len(sa | sb)


def test_estimated_jaccard_tracks_the_exact_one() -> None:
    rng = random.Random(0)
    base = "".join(sample_texts(40))[:3000]
    hasher = MinHasher()
    errors = []
    for _ in range(40):
        chars = list(base)
        for _ in range(rng.randint(0, 300)):
            chars[rng.randrange(len(chars))] = rng.choice("あいうえおかきくけこ")
        edited = "".join(chars)
        sigs = hasher.signatures([base, edited])
        errors.append(estimated_jaccard(sigs[0], sigs[1]) - exact_jaccard(base, edited))
    assert abs(np.mean(errors)) < 0.04, "nearly unbiased (datasketch's affine32 scheme reads ~0.03 low here)"
    assert np.mean(np.abs(errors)) < 0.06 and np.max(np.abs(errors)) < 0.2  # 128 permutations: sd <= 0.044


@pytest.mark.parametrize("threshold", [0.7, 0.8, 0.9])
def test_band_parameters_are_datasketchs(threshold: float) -> None:
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    assert lsh_params(threshold, 128) == (lsh.b, lsh.r)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def edit(text: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    chars = list(text)
    for _ in range(n):
        chars[rng.randrange(len(chars))] = "☆"
    return "".join(chars)


POOL = "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん日本語文章記事"


def random_texts(n: int, length: int = 1500) -> list[str]:
    """Distinct texts: random characters share almost no 5-character shingles."""
    rng = random.Random(42)
    return ["".join(rng.choice(POOL) for _ in range(length)) for _ in range(n)]


def test_dedup_keeps_the_best_copy_across_files_and_records_why(tmp_path: Path) -> None:
    texts = random_texts(12)
    long_text = texts[0]
    rows_a = [
        {"id": "a-exact-1", "text": long_text, "q": 0.30},
        {"id": "a-near", "text": edit(long_text, 10, 1), "q": 0.05},  # the best copy: lowest P(noise)
        *({"id": f"a-other-{i}", "text": t, "q": 0.1} for i, t in enumerate(texts[1:6])),
    ]
    rows_b = [
        {"id": "b-exact-2", "text": long_text, "q": 0.30},
        {"id": "b-far", "text": edit(long_text, 400, 2), "q": 0.01},  # too different to be a duplicate
        {"id": "b-chain-1", "text": texts[6], "q": 0.2},
        {"id": "b-chain-2", "text": texts[6] + "追記。", "q": 0.2},  # longer: survives among equals
        *({"id": f"b-other-{i}", "text": t, "q": 0.1} for i, t in enumerate(texts[7:12])),
    ]
    inputs = [write_jsonl(tmp_path / "in" / "a.jsonl", rows_a), write_jsonl(tmp_path / "in" / "b.jsonl", rows_b)]
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: tests.helpers:QualityFromMeta\n  - stage: dedup\n")
    summary = run_pipeline(inputs, tmp_path / "out", pipeline)
    rejects = {
        r["id"]: r
        for f in (tmp_path / "out" / "rejects" / "dedup").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    }
    assert set(rejects) == {"a-exact-1", "b-exact-2", "b-chain-1"}
    for doc_id in ("a-exact-1", "b-exact-2"):
        assert rejects[doc_id]["dup_of"] == "a-near" and rejects[doc_id]["reject_reason"] == "dedup.near_duplicate"
        assert 0.8 <= rejects[doc_id]["dup_jaccard"] < 1
    assert rejects["b-chain-1"]["dup_of"] == "b-chain-2"
    kept, rejected = output_ids(tmp_path / "out")
    assert sum(kept.values()) + sum(rejected.values()) == len(rows_a) + len(rows_b)
    dedup = next(s for s in summary["stages"] if s["stage"] == "dedup")
    assert dedup["rejected"] == {"dedup.near_duplicate": 3}


def test_exact_copies_are_removed_as_exact_and_the_smallest_id_wins(tmp_path: Path) -> None:
    text = sample_texts(5)[2]
    rows = [{"id": f"d{i}", "text": text} for i in (3, 1, 2)] + [{"id": "x", "text": "まったく別の文書。" * 20}]
    inputs = [write_jsonl(tmp_path / "in" / "a.jsonl", rows[:2]), write_jsonl(tmp_path / "in" / "b.jsonl", rows[2:])]
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: dedup\n")
    run_pipeline(inputs, tmp_path / "out", pipeline)
    rejects = {
        r["id"]: r
        for f in (tmp_path / "out" / "rejects" / "dedup").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    }
    assert set(rejects) == {"d2", "d3"}
    assert all(
        r["dup_of"] == "d1" and r["reject_reason"] == "dedup.exact" and r["dup_jaccard"] == 1 for r in rejects.values()
    )


def test_default_pipeline_dedups_the_sample(sample_run: Path) -> None:
    summary = json.loads((sample_run / "summary.json").read_text())
    dedup = next(s for s in summary["stages"] if s["stage"] == "dedup")
    # the sample's exact copies are mostly of pages the rules stage already removes (their prose is
    # repeated across the sample's sites); exact dedup itself is tested on inputs of its own above
    info = json.loads(next(sample_run.glob("*-dedup/_prepare/artifacts/dedup.json")).read_text())
    assert info["removed_exact"] + info["removed_near"] == dedup["rejected_total"]
    # buckets for threshold - verify margin: a pair at the threshold is a candidate with P ~0.99
    assert (info["bands"], info["rows"]) == lsh_params(0.7, 128, 0.2, 0.8)


def test_a_shard_left_empty_upstream_is_fine(tmp_path: Path) -> None:
    """Earlier stages can reject every document of a shard; dedup must still run over the others."""
    texts = random_texts(3)
    inputs = [
        write_jsonl(tmp_path / "in" / "a.jsonl", [{"id": "a", "text": "\u200b"}]),  # empty after normalize
        write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "b", "text": texts[0]}, {"id": "c", "text": texts[0]}]),
    ]
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: dedup\n")
    summary = run_pipeline(inputs, tmp_path / "out", pipeline)
    dedup = next(s for s in summary["stages"] if s["stage"] == "dedup")
    assert dedup["rejected"] == {"dedup.exact": 1} and dedup["kept"] == 1


def test_every_removal_is_similar_to_the_kept_document_it_names(tmp_path: Path) -> None:
    """A chain best ~ middle ~ far, where best and far are not similar: the old rule removed far as a
    duplicate of best (one survivor per connected component); far must be kept."""
    best = random_texts(1)[0]
    middle = edit(best, 24, 1)
    far = edit(middle, 24, 2)
    assert exact_jaccard(best, middle) >= 0.82 and exact_jaccard(middle, far) >= 0.82
    assert exact_jaccard(best, far) < 0.78
    rows = [
        {"id": "best", "text": best, "q": 0.01},
        {"id": "middle", "text": middle, "q": 0.2},
        {"id": "far", "text": far, "q": 0.3},
        *({"id": f"other-{i}", "text": t, "q": 0.1} for i, t in enumerate(random_texts(6)[1:])),
    ]
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: tests.helpers:QualityFromMeta\n  - stage: dedup\n")
    run_pipeline([write_jsonl(tmp_path / "in" / "a.jsonl", rows)], tmp_path / "out", pipeline)
    rejects = {
        r["id"]: r
        for f in (tmp_path / "out" / "rejects" / "dedup").glob("*.parquet")
        for r in pq.read_table(f).to_pylist()
    }
    kept, _ = output_ids(tmp_path / "out")
    assert set(rejects) == {"middle"} and "far" in kept and "best" in kept
    text = {r["id"]: r["text"] for r in rows}
    for doc_id, row in rejects.items():
        assert row["dup_of"] in kept
        assert row["dup_jaccard"] == pytest.approx(exact_jaccard(text[doc_id], text[row["dup_of"]]), abs=1e-6)
        assert row["dup_jaccard"] >= 0.8


def test_keep_pairs_writes_every_pair_found_with_ids_and_jaccard(tmp_path: Path) -> None:
    """The chain best ~ middle ~ far: only middle is removed, but both of its pairs were found (and
    not best-far, under the threshold); exact copies in two files come as a pair of Jaccard 1."""
    best = random_texts(1)[0]
    middle, other = edit(best, 24, 1), random_texts(8)[7]
    far = edit(middle, 24, 2)
    rows = [{"id": "best", "text": best}, {"id": "middle", "text": middle}, {"id": "far", "text": far}]
    rows += [{"id": f"other-{i}", "text": t} for i, t in enumerate(random_texts(6)[1:])]
    inputs = [
        write_jsonl(tmp_path / "in" / "a.jsonl", [*rows, {"id": "copy-1", "text": other}]),
        write_jsonl(tmp_path / "in" / "b.jsonl", [{"id": "copy-2", "text": other}]),
    ]
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: dedup\n    keep_pairs: true\n")
    run_pipeline(inputs, tmp_path / "out", pipeline)
    files = sorted((tmp_path / "out").glob("*-dedup/_prepare/artifacts/pairs/*.parquet"))
    found = {frozenset((r["id_a"], r["id_b"])): r["jaccard"] for f in files for r in pq.read_table(f).to_pylist()}
    text = {r["id"]: r["text"] for r in rows}
    assert set(found) == {frozenset(("best", "middle")), frozenset(("middle", "far")), frozenset(("copy-1", "copy-2"))}
    for pair, jaccard in found.items():
        a, b = sorted(pair)
        expected = 1.0 if a.startswith("copy") else exact_jaccard(text[a], text[b])
        assert jaccard == pytest.approx(expected, abs=1e-6) and jaccard >= 0.8
    without = tmp_path / "p2.yaml"
    without.write_text("stages:\n  - stage: normalize\n  - stage: dedup\n")
    run_pipeline(inputs, tmp_path / "out2", without)
    assert not list((tmp_path / "out2").glob("*-dedup/_prepare/artifacts/pairs"))


def test_every_pair_of_a_bucket_is_compared_and_a_giant_bucket_costs_linear_pairs() -> None:
    from cleaning.dedup.cluster import _bucket_pairs

    # bucket 7: docs 1, 2, 3 (and 4, an exact copy of 3); bucket 9: docs 5, 6
    value = np.array([7, 7, 7, 7, 9, 9], np.uint64)
    exact_key = np.array([10, 20, 30, 30, 40, 50], np.uint64)
    doc = np.array([1, 2, 3, 4, 5, 6], np.uint64)
    u, v, giant = _bucket_pairs(value, exact_key, doc, max_bucket=100)
    pairs = {tuple(sorted(p)) for p in zip(u.tolist(), v.tolist(), strict=True)}
    assert pairs == {(1, 2), (1, 3), (2, 3), (5, 6)}, "2-3 is compared (a star from 1 missed it); 4 is 3's copy"
    assert giant == {"giant_buckets": 0, "giant_bucket_max": 0, "pairs_not_compared": 0}
    m, cap = 1000, 10
    ids = np.arange(m, dtype=np.uint64)
    u, v, giant = _bucket_pairs(np.zeros(m, np.uint64), ids, ids, cap)
    assert len(u) == (cap - 1) * m - (cap - 1) * cap // 2  # each member with the next cap - 1
    assert giant == {"giant_buckets": 1, "giant_bucket_max": m, "pairs_not_compared": m * (m - 1) // 2 - len(u)}


def test_partitions_follow_the_data_not_the_shards_and_do_not_change_the_result(tmp_path: Path) -> None:
    """Reducers read their slice of every shard's spill (memory-mapped .npy): with one partition per
    shard and whole .npz files, the reduce read shards x partitions files (quadratic in shards)."""
    texts = random_texts(30, 600)
    rows = [{"id": f"d{i}", "text": t} for i, t in enumerate(texts)]
    rows += [{"id": f"near{i}", "text": edit(t, 5, i)} for i, t in enumerate(texts[:10])]
    source = write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: dedup\n")
    results = {}
    runs = [("one", []), ("many", ["input.shard_mb=0.005"])]
    runs += [("p3", ["dedup.partitions=3"]), ("p1", ["dedup.partitions=1"])]
    for name, overrides in runs:
        summary = run_pipeline([source], tmp_path / name, pipeline, overrides)
        info = json.loads(next((tmp_path / name).glob("*-dedup/_prepare/artifacts/dedup.json")).read_text())
        removed = {
            (r["id"], r["dup_of"])
            for f in (tmp_path / name / "rejects" / "dedup").glob("*.parquet")
            for r in pq.read_table(f).to_pylist()
        }
        results[name] = (summary["stages"][0]["shards"], info, removed)
    assert results["one"][0] == 1 and results["many"][0] > 10
    assert results["one"][1]["partitions"] == results["many"][1]["partitions"] == 8
    assert results["p3"][1]["partitions"] == 3
    assert len(results["one"][2]) == 10
    assert results["one"][2] == results["many"][2] == results["p3"][2] == results["p1"][2]
    # a near pair shares about half its bands, so it meets in several partitions: one judges it
    assert results["one"][1]["candidate_pairs"] == results["p3"][1]["candidate_pairs"] == 10
    assert results["p1"][1]["candidate_pairs"] == 10


def test_shingle_sets_read_by_seek_match_the_texts_with_few_files_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verification reads each document's shingles with a seek (a memory map kept every touched
    page resident: 2.4 GB in a 1.2 GB run); at most OPEN_SHARDS files stay open."""
    from cleaning.dedup import cluster

    monkeypatch.setattr(cluster, "OPEN_SHARDS", 2)
    hasher = MinHasher(16, 5, 1)
    texts = random_texts(10, 300)
    texts[1] = texts[0][:250] + edit(texts[0][250:], 3, 1)
    for sub in (cluster.SIGS, cluster.SHINGLES):
        (tmp_path / sub).mkdir()
    keys = []
    for shard in range(5):  # two documents per shard file
        pair = texts[2 * shard : 2 * shard + 2]
        _, hashes = hasher.signatures_and_hashes(pair)
        job = cluster.MapJob(tmp_path / "x.parquet", shard, tmp_path, hasher, 4, 4, 1, True)
        cluster._save_shingles(job, hashes, np.arange(2))
        keys += [(shard << 32) | row for row in range(2)]
    sets = cluster.ShingleSets(tmp_path, cache=1)
    u, v = np.array(keys * 2, np.uint64), np.array(keys[::-1] * 2, np.uint64)
    got = sets.jaccard(u, v)
    text_of = dict(zip(keys, texts, strict=True))
    want = [exact_jaccard(text_of[a], text_of[b]) for a, b in zip(u.tolist(), v.tolist(), strict=True)]
    assert got == pytest.approx(want)
    assert len(sets._maps) == 2
    assert exact_jaccard(texts[0], texts[1]) > 0.5


@pytest.mark.parametrize("parts", [1, 3, 8])
def test_star_rounds_find_scipys_components_named_by_their_smallest_document(tmp_path: Path, parts: int) -> None:
    """Large-star/small-star rounds over pairs split by node: the same partition into components as
    scipy's, each named by its smallest key, whatever the number of partitions; a long chain needs
    many rounds, stars and random joins few."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from cleaning.dedup import cluster, components

    rng = np.random.default_rng(3)
    docs = (1000, 1500, 800)  # documents per shard; a document's key is shard << 32 | row
    every = np.concatenate(
        [(np.uint64(s) << np.uint64(32)) | np.arange(n, dtype=np.uint64) for s, n in enumerate(docs)]
    )
    keys = np.unique(rng.choice(every, 3000, replace=False))
    chain = rng.permutation(len(keys))[:300]
    a = np.concatenate([rng.integers(0, len(keys), 1800), chain[:-1], np.full(40, chain[0])])
    b = np.concatenate([rng.integers(0, len(keys), 1800), chain[1:], rng.integers(0, len(keys), 40)])
    a, b = a[a != b], b[a != b]
    (tmp_path / cluster.EDGES).mkdir()
    for p, rows in enumerate(np.array_split(rng.permutation(len(a)), 3)):  # three reduce partitions
        u, v = keys[a[rows]], keys[b[rows]]
        np.savez(tmp_path / cluster.EDGES / f"{p:05d}.npz", u=u, v=v, jaccard=np.ones(len(u), np.float32))
    calls: list[str] = []

    def serial(fn: Callable, jobs: list, label: str) -> list:  # the executor's map, in this process
        calls.append(label)
        return [fn(job) for job in jobs]

    found = components.find(serial, tmp_path, 3, len(a), 1.0, parts=parts)
    member, component = components.Labels(tmp_path, parts).lookup(keys)
    n = len(keys)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    in_pair = np.zeros(n, dtype=bool)
    in_pair[a], in_pair[b] = True, True
    assert np.array_equal(member, in_pair) and found["nodes"] == in_pair.sum()
    for c in np.unique(label[in_pair]):
        mine = in_pair & (label == c)
        assert set(component[mine].tolist()) == {int(keys[mine].min())}
    assert found["rounds"] > 5 and len(calls) == found["rounds"] + 1  # the seed, then one map per round
    # nothing but the final labels is left behind
    assert sorted(p.name for p in (tmp_path / components.FOLDER).iterdir()) == [components.LABELS]
    outside = np.array([int(keys.max()) + 1], dtype=np.uint64)
    assert not components.Labels(tmp_path, parts).lookup(outside)[0].any()


def test_star_rounds_that_never_settle_stop_with_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cleaning.dedup import cluster, components
    from cleaning.errors import CleaningError

    (tmp_path / cluster.EDGES).mkdir()
    keys = np.arange(1, 6, dtype=np.uint64)
    np.savez(tmp_path / cluster.EDGES / "00000.npz", u=keys[:-1], v=keys[1:], jaccard=np.ones(4, np.float32))
    monkeypatch.setattr(components, "MAX_ROUNDS", 1)  # a 5-node chain needs more than one round

    def serial(fn: Callable, jobs: list, label: str) -> list:
        return [fn(job) for job in jobs]

    with pytest.raises(CleaningError, match="not settled after 1 rounds"):
        components.find(serial, tmp_path, 1, 4, 1.0)


def test_survivors_chosen_in_groups_equal_those_chosen_in_one(tmp_path: Path) -> None:
    """Groups of components are resolved by separate tasks: the survivors, what each removal names
    and its Jaccard, and the component counts must not depend on how many groups there are."""
    texts = random_texts(40, 600)
    rows = [{"id": f"d{i}", "text": t, "q": 0.1 + (i % 7) / 10} for i, t in enumerate(texts)]
    for i, t in enumerate(texts[:20]):  # chains, stars of near copies and exact copies
        middle = edit(t, 8, i)
        rows.append({"id": f"m{i}", "text": middle, "q": 0.05})
        rows.append({"id": f"f{i}", "text": edit(middle, 8, 100 + i), "q": 0.5})
        rows += [{"id": f"c{i}-{k}", "text": t, "q": 0.3} for k in range(i % 3)]
    source = write_jsonl(tmp_path / "in" / "a.jsonl", rows)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - stage: normalize\n  - stage: tests.helpers:QualityFromMeta\n  - stage: dedup\n")
    results = {}
    for groups in (1, 3, 16):
        out = tmp_path / f"g{groups}"
        run_pipeline([source], out, pipeline, [f"dedup.survivor_groups={groups}", "input.shard_mb=0.01"])
        info = json.loads(next(out.glob("*-dedup/_prepare/artifacts/dedup.json")).read_text())
        removed = {
            (r["id"], r["dup_of"], r["dup_jaccard"])
            for f in (out / "rejects" / "dedup").glob("*.parquet")
            for r in pq.read_table(f).to_pylist()
        }
        kept, _ = output_ids(out)
        results[groups] = (info, removed, kept)
        assert info["survivor_groups"] == groups
    one, _, _ = results[1]
    # 20 components: original, middle, far and i % 3 exact copies of the original (by construction)
    assert one["components"] == {"3": 7, "4": 7, "5": 6} and one["documents_in_pairs"] == 79
    assert {f"m{i}" for i in range(20)} <= set(results[1][2])  # the best copy of each component survives
    assert one["removed_exact"] + one["removed_near"] >= 50
    for groups in (3, 16):
        info, removed, kept = results[groups]
        assert removed == results[1][1] and kept == results[1][2]
        for key in ("components", "removed_exact", "removed_near", "hosts", "documents_in_pairs"):
            assert info[key] == one[key]
