"""Genres stage: fastText document vectors, k-means fit and assignment, the stage over a real run."""

from __future__ import annotations

import gzip
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cleaning.document import Doc
from cleaning.errors import CleaningError
from cleaning.fasttext_input import REPRESENTATIONS, load_pieces, tokens, train_pieces
from cleaning.genres import kmeans
from cleaning.genres.embeddings import Embedder, EmbeddingParams, common_direction, train
from cleaning.stages.genres import NO_TOKENS, Genres, GenresConfig, auto_k
from tests.conftest import PIPELINE, SAMPLE, genres_dir, parquet_files, run_pipeline


def sample_texts(limit: int = 200) -> list[str]:
    texts = []
    for path in sorted(SAMPLE.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f]
    return [t for t in texts if t.strip()][:limit]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path | None]]:
    """A small model per representation, trained on the bundled sample: (embeddings, pieces model)."""
    folder = tmp_path_factory.mktemp("models")
    raw = folder / "raw.txt"
    raw.write_text("".join(" ".join(t.split()) + "\n" for t in sample_texts(400)), encoding="utf-8")
    pieces = load_pieces(str(train_pieces(raw, folder / "sp", 2000)))
    out = {}
    for rep in REPRESENTATIONS:
        data = folder / f"{rep}.txt"
        lines = raw.read_text(encoding="utf-8").splitlines()
        data.write_text("".join(tokens(t, rep, pieces) + "\n" for t in lines), encoding="utf-8")
        train(data, EmbeddingParams(representation=rep, dim=20, epoch=2, min_count=2), folder / f"{rep}.bin")
        out[rep] = (folder / f"{rep}.bin", folder / "sp.model" if rep == "pieces" else None)
    return out


def fasttext_sentence_vectors(model_path: Path, texts: list[str], representation: str, pieces) -> np.ndarray:
    import fasttext

    model = fasttext.load_model(str(model_path))
    lines = [tokens(t, representation, pieces) for t in texts]
    if representation == "pieces":  # the bare "▁" piece is left out of document vectors
        lines = [" ".join(p for p in line.split(" ") if p != "▁") for line in lines]
    vectors = np.array([model.get_sentence_vector(line) for line in lines])
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


@pytest.mark.parametrize("representation", REPRESENTATIONS)
def test_document_vectors_equal_fasttext_sentence_vectors(representation, models) -> None:
    """With plain means, our batched sparse product is what fastText's get_sentence_vector computes."""
    model, pieces = models[representation]
    texts = [*sample_texts(150), "あ", "x y\nz"]
    ours, counts = Embedder(model, representation, pieces=pieces).embed(texts)
    theirs = fasttext_sentence_vectors(model, texts, representation, load_pieces(str(pieces)) if pieces else None)
    assert ours.shape == theirs.shape
    cosine = (ours * theirs).sum(axis=1)
    known = counts > 0
    if pieces:  # characters unknown to sentencepiece are skipped by us, kept as surface strings by fastText
        known &= np.array([0 not in load_pieces(str(pieces)).encode(t) for t in texts])
    assert np.all(cosine[known] > 0.9999), cosine[known].min()
    assert np.allclose(np.linalg.norm(ours[counts > 0], axis=1), 1, atol=1e-5)


def test_sif_weights_and_common_direction_change_the_vectors(models) -> None:
    model, pieces = models["pieces"]
    texts = sample_texts(60)
    plain, _ = Embedder(model, "pieces", pieces=pieces).embed(texts)
    weighted, _ = Embedder(model, "pieces", sif_a=1e-3, pieces=pieces).embed(texts)
    direction = common_direction(weighted)
    cleaned, _ = Embedder(model, "pieces", sif_a=1e-3, common=direction, pieces=pieces).embed(texts)
    assert not np.allclose(plain, weighted)
    assert np.abs(cleaned @ direction).max() < 1e-4, "nothing is left along the common direction"
    assert np.abs(weighted @ direction).mean() > 0.5, "…which every document shared before"


def test_texts_without_known_tokens_have_zero_vectors_and_count(models) -> None:
    for rep, (model, pieces) in models.items():
        vectors, counts = Embedder(model, rep, pieces=pieces).embed(["", "   \n", "ꙮꙮꙮ", "今日は晴れ"])
        assert counts[:3].tolist() == [0, 0, 0] and counts[3] > 0, rep
        assert not vectors[:3].any()


def test_embedding_training_is_bit_reproducible(tmp_path: Path) -> None:
    """fastText leaves 90% of its input matrix uninitialised with one thread; our seeded start fixes that."""
    import fasttext

    data = tmp_path / "train.txt"
    data.write_text("".join(tokens(t) + "\n" for t in sample_texts(300)), encoding="utf-8")
    digests = set()
    for i in range(2):
        train(data, EmbeddingParams(dim=32, epoch=3), tmp_path / f"m{i}.bin", seed=7)
        matrix = fasttext.load_model(str(tmp_path / f"m{i}.bin")).get_input_matrix()
        assert np.isfinite(matrix).all()
        digests.add(hashlib.sha256(matrix.tobytes()).hexdigest())
    assert len(digests) == 1
    assert not (tmp_path / "train.init.vec").exists(), "the initial vectors file is removed"


def test_training_on_nothing_is_a_clear_error(tmp_path: Path) -> None:
    empty = tmp_path / "train.txt"
    empty.write_text("")
    with pytest.raises(CleaningError, match="no text to train"):
        train(empty, EmbeddingParams(), tmp_path / "m.bin")


def blobs(seed: int = 0, per: tuple[int, ...] = (300, 200, 120, 60), dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = np.eye(dim)[: len(per)] * 1.0
    x = np.concatenate([c + rng.normal(0, 0.05, (n, dim)) for c, n in zip(centers, per, strict=True)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), np.repeat(np.arange(len(per)), per)


def test_kmeans_is_seeded_numbered_by_size_and_recovers_blobs() -> None:
    x, truth = blobs()
    a, b = kmeans.fit(x, 4, 0, seed=3), kmeans.fit(x, 4, 0, seed=3)
    assert np.array_equal(a.centroids, b.centroids)
    assert a.sizes.tolist() == [300, 200, 120, 60], "cluster 0 is the largest"
    labels, sims = kmeans.assign(x, a.centroids)
    assert np.array_equal(labels, truth), "well-separated blobs are recovered exactly (numbered by size)"
    assert np.all(sims > 0.9)


def test_assign_is_the_nearest_centroid() -> None:
    from sklearn.metrics import pairwise_distances_argmin

    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 8)).astype(np.float32)
    centroids = rng.normal(size=(30, 8)).astype(np.float32)
    labels, _ = kmeans.assign(x, centroids)
    assert np.array_equal(labels, pairwise_distances_argmin(x, centroids))


def test_domains_group_neighbouring_clusters() -> None:
    """Two far-apart groups of two blobs each: domains put each pair together, larger domain first."""
    rng = np.random.default_rng(2)
    base = np.eye(8)
    centers = [base[0] + 0.3 * base[1], base[0] - 0.3 * base[1], base[4] + 0.3 * base[5], base[4] - 0.3 * base[5]]
    per = [200, 150, 60, 50]
    x = np.concatenate([c + rng.normal(0, 0.02, (n, 8)) for c, n in zip(centers, per, strict=True)]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    fit = kmeans.fit(x, 4, domains=2, seed=0)
    assert fit.domain_of.tolist() == [0, 0, 1, 1]


def test_k_is_capped_by_the_number_of_documents() -> None:
    x, _ = blobs(per=(3, 2))
    assert len(kmeans.fit(x, 50, 0, seed=0).centroids) == 5
    assert auto_k(430, 10_000) == 21 and auto_k(10**8, 10_000) == 10_000 and auto_k(1, 10) == 2


def test_genres_stage_on_the_sample_run(sample_run: Path) -> None:
    stage_dir = genres_dir(sample_run)
    info = json.loads((stage_dir / "_prepare" / "artifacts" / "genres.json").read_text())
    table = pa.concat_tables(pq.read_table(p) for p in sorted((stage_dir / "shards").glob("*.parquet")))
    domain_of = np.load(stage_dir / "_prepare" / "artifacts" / "domain_of.npy")
    k = info["fit"]["k"]
    assert k == auto_k(info["documents"], 10_000) == len(domain_of)
    clusters = np.array(table["cluster"].to_pylist())
    assert clusters.min() >= 0 and clusters.max() < k
    assert np.array_equal(np.array(table["domain"].to_pylist()), domain_of[clusters])
    sims = np.array(table["genre_sim"].to_pylist())
    assert np.all((sims > 0) & (sims <= 1.0001))
    assert len(set(clusters.tolist())) >= k // 2, "documents spread over the clusters"
    assert info["training"]["sample_docs"] == table.num_rows, "10 MB covers the whole sample"


def test_documents_without_known_tokens_are_noted_and_spread(sample_run: Path) -> None:
    artifacts = genres_dir(sample_run) / "_prepare" / "artifacts"
    stage = Genres(GenresConfig(), artifacts)
    docs = [Doc(f"d{i}", "ꙮ" * (i + 1)) for i in range(40)] + [Doc("ok", "今日は晴れて気持ちがいい。")]
    result = stage.process([Doc(d.id, d.text) for d in docs])
    again = Genres(GenresConfig(), artifacts).process([Doc(d.id, d.text) for d in docs])
    notes = [d.fields["genre_note"] for d in result.kept]
    assert notes[:40] == [NO_TOKENS] * 40 and notes[40] is None
    assert result.counters["genres." + NO_TOKENS] == 40
    clusters = [d.fields["cluster"] for d in result.kept]
    assert clusters == [d.fields["cluster"] for d in again.kept], "deterministic"
    assert len(set(clusters[:40])) > 3, "not all thrown into one cluster"


def test_given_embeddings_skip_training_and_give_identical_output(tmp_path: Path, sample_run: Path) -> None:
    model = genres_dir(sample_run) / "_prepare" / "artifacts" / "embeddings.bin"
    run_pipeline([SAMPLE], tmp_path / "out", PIPELINE, [f"genres.embeddings={model}"])
    info = json.loads((genres_dir(tmp_path / "out") / "_prepare" / "artifacts" / "genres.json").read_text())
    assert "training" not in info
    ours = {k: v for k, v in parquet_files(tmp_path / "out").items() if "genres" in k}
    theirs = {k: v for k, v in parquet_files(sample_run).items() if "genres" in k}
    assert ours == theirs, "a trained model reused gives the same clusters"


def test_bad_genres_config_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match="representation"):
        GenresConfig(representation="words")
    with pytest.raises(CleaningError, match="not found"):
        GenresConfig(embeddings=str(tmp_path / "missing.bin"))


@pytest.mark.shared
@pytest.mark.parametrize(("method", "floor"), [("fasttext", 0.7), ("lsa", 0.7)])
def test_livedoor_categories_are_recovered(tmp_path: Path, shared_data: Path, method: str, floor: float) -> None:
    """On real news, the genres stage's clusters follow livedoor's 9 categories far above chance."""
    with gzip.open(shared_data / "clean" / "livedoor_news.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f][::3]  # ~2,500 articles keep the test short
    source = tmp_path / "livedoor.jsonl"
    source.write_text("".join(json.dumps({"id": f"ld{i}", **r}, ensure_ascii=False) + "\n" for i, r in enumerate(rows)))
    pipeline = tmp_path / "genres.yaml"
    pipeline.write_text(
        "stages:\n  - stage: normalize\n  - stage: genres\n    k: 27\n    train_mb: 2\n    pieces_vocab: 8000\n"
        f"    dim: 32\n    method: {method}\n"
    )
    run_pipeline([source], tmp_path / "out", pipeline)
    table = pa.concat_tables(
        pq.read_table(p) for p in sorted((genres_dir(tmp_path / "out") / "shards").glob("*.parquet"))
    )
    gold = [json.loads(m)["category"] for m in table["meta"].to_pylist()]
    by: dict[int, Counter[str]] = {}
    for g, c in zip(gold, table["cluster"].to_pylist(), strict=True):
        by.setdefault(c, Counter())[g] += 1
    purity = sum(c.most_common(1)[0][1] for c in by.values()) / len(gold)
    chance = Counter(gold).most_common(1)[0][1] / len(gold)
    assert purity > floor and chance < 0.15, (purity, chance)  # measured 0.78 and 0.77; a broken embedder: ~chance
    # (32 dims halve the fastText training time: purity 0.776, 0.778 with 100)


def test_lsa_vectors_follow_their_definition_and_do_not_depend_on_the_batch(tmp_path: Path, models) -> None:
    import itertools
    import unicodedata

    from cleaning.genres import lsa

    _, pieces_model = models["pieces"]
    sample = tmp_path / "sample.txt"
    sample.write_text("".join(" ".join(t.split()) + "\n" for t in sample_texts(300)), encoding="utf-8")
    fitted = lsa.fit(pieces_model, sample, tmp_path / "lsa.npz", dim=16, seed=0)
    assert fitted == {"documents": 300, "dims": 16, "bits": lsa.BITS}
    embedder = lsa.LsaEmbedder(tmp_path / "lsa.npz", pieces_model)
    texts = [*sample_texts(40)[-6:], "", "!!"]
    vectors, counts = embedder.embed(texts)
    alone = np.concatenate([embedder.embed([t])[0] for t in texts])
    assert np.allclose(vectors, alone, atol=1e-5), "a document's vector does not depend on its batch"
    pieces = load_pieces(str(pieces_model))
    with np.load(tmp_path / "lsa.npz") as data:
        idf, components = data["idf"], data["components"]
    vocab = pieces.get_piece_size()
    for text, vector, count in zip(texts, vectors, counts, strict=True):
        ids = pieces.encode(" ".join(unicodedata.normalize("NFKC", text).split()), out_type=int)
        assert count == len(ids)
        features: Counter[int] = Counter(ids)
        mask = (1 << lsa.BITS) - 1
        features.update(vocab + (((a * 16411 + b) * 2654435761) & mask) for a, b in itertools.pairwise(ids))
        expected = sum(((1 + np.log(n)) * idf[f] * components[f] for f, n in features.items()), np.zeros(16))
        norm = np.linalg.norm(expected)
        assert np.allclose(vector, expected / norm if norm else expected, atol=1e-4)
    assert np.allclose(np.linalg.norm(vectors[:6], axis=1), 1, atol=1e-5)


def test_lsa_method_runs_and_its_model_is_reused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    run_pipeline([SAMPLE], out, PIPELINE, ["genres.method=lsa"])
    card = json.loads((out / "genre-model" / "genre-model.json").read_text())
    assert card["embed"]["method"] == "lsa" and (out / "genre-model" / "lsa.npz").is_file()
    assert not (out / "genre-model" / "embeddings.bin").exists(), "no fastText model is trained for lsa"
    table = pq.read_table(genres_dir(out) / "shards", columns=["cluster", "genre_model"])
    assert set(table["genre_model"].to_pylist()) == {card["id"]} and len(set(table["cluster"].to_pylist())) > 1
    with pytest.raises(CleaningError, match="representation pieces"):
        GenresConfig(method="lsa", representation="chars")
