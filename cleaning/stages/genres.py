"""genres: cluster documents by topic with fastText document vectors and k-means; adds cluster columns.

The corpus-wide step trains embeddings on a hashed sample of the corpus, embeds a second sample
and fits k-means (plus optional coarse domains); the per-shard pass embeds every document and
assigns its nearest centroid. Nothing is rejected here: weights act later (`balance`).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pyarrow as pa
import xxhash
from threadpoolctl import threadpool_limits

from cleaning.document import Doc, StageResult
from cleaning.errors import CleaningError
from cleaning.fasttext_input import REPRESENTATIONS, load_pieces, tokens, train_pieces
from cleaning.genres import kmeans, lsa, sample
from cleaning.genres import model as gm
from cleaning.genres.embeddings import EmbeddingParams, common_direction, train
from cleaning.shards import file_hash, write_json_atomic
from cleaning.stage import PrepareContext, Stage, register

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EMBEDDINGS = gm.EMBEDDINGS
LSA_MODEL = gm.LSA
METHODS = ("fasttext", "lsa")
CENTROIDS = gm.CENTROIDS
COMMON = gm.COMMON
DOMAINS = gm.DOMAINS
INFO = "genres.json"
NO_TOKENS = "no_known_tokens"
AUTO = "auto"


@dataclass
class GenresConfig:
    k: int = field(default=0, metadata={"help": "clusters; 0 = about sqrt(documents), at most max_k"})
    max_k: int = field(default=10_000, metadata={"help": "cap for the automatic k"})
    domains: int = field(default=-1, metadata={"help": "coarse groups of clusters; -1 = ~sqrt(k), 0 = none"})
    method: str = field(
        default="fasttext",
        metadata={"help": "fasttext (mean word vectors) or lsa (TF-IDF of pieces and piece bigrams, SVD: purer)"},
    )
    representation: str = field(default="pieces", metadata={"help": "fastText tokens: pieces, chars or char_bigrams"})
    lsa_bits: int = field(default=lsa.BITS, metadata={"help": "lsa: piece bigrams hashed into 2^lsa_bits columns"})
    word_model: str = field(default="cbow", metadata={"help": "fastText word vectors: cbow or skipgram"})
    dim: int = field(default=100, metadata={"help": "embedding dimensions"})
    epoch: int = field(default=10, metadata={"help": "fastText epochs over the training sample"})
    min_count: int = field(default=5, metadata={"help": "ignore tokens rarer than this in the training sample"})
    window: int = field(default=1000, metadata={"help": "fastText context window (tokens each side): wide = topical"})
    sif_a: float = field(default=1e-3, metadata={"help": "token weight a/(a+p); 0 = plain mean of vectors"})
    remove_common: bool = field(default=True, metadata={"help": "remove the direction all documents share"})
    pieces_vocab: int = field(default=16_000, metadata={"help": "sentencepiece vocabulary (pieces representation)"})
    train_mb: float = field(default=10.0, metadata={"help": "MB of text sampled to train the embeddings"})
    fit_docs: int = field(default=300_000, metadata={"help": "documents sampled to fit k-means"})
    threads: int = field(default=1, metadata={"help": "fastText training threads; 1 is reproducible, more is faster"})
    embeddings: str = field(default="", metadata={"help": "a trained embeddings .bin to reuse; empty = train one"})
    seed: int = field(default=0, metadata={"help": "seed of the initial embeddings and of k-means"})
    model: str = field(
        default=AUTO,
        metadata={"help": "genre model: auto = OUTPUT/genre-model (fitted once, then reused), or a model folder"},
    )
    refit: bool = field(default=False, metadata={"help": "fit a new genre model even if one exists (new cluster ids)"})

    def __post_init__(self) -> None:
        if not 8 <= self.lsa_bits <= 24:
            raise CleaningError("genres.lsa_bits must be between 8 and 24")
        if self.word_model not in ("skipgram", "cbow"):
            raise CleaningError("genres.word_model must be skipgram or cbow")
        if self.method not in METHODS:
            raise CleaningError(f"genres.method must be one of {', '.join(METHODS)}")
        if self.method == "lsa" and (self.representation != "pieces" or self.embeddings):
            raise CleaningError("genres.method lsa works on pieces: needs representation pieces and no embeddings")
        if self.model != AUTO:
            path = _resolve(self.model)
            self.model = str(path)
            if not self.refit:
                gm.read_card(path)  # a missing or incomplete model fails before the run starts
        if self.representation not in REPRESENTATIONS:
            raise CleaningError(f"genres.representation must be one of {', '.join(REPRESENTATIONS)}")
        if self.k < 0 or self.max_k < 1 or self.fit_docs < 1 or self.train_mb <= 0 or self.threads < 1:
            raise CleaningError("genres: needs k >= 0, max_k >= 1, fit_docs >= 1, train_mb > 0, threads >= 1")
        if self.embeddings:
            path = _resolve(self.embeddings)
            self.embeddings = str(path)  # absolute: Ray workers may run elsewhere
            if not path.is_file():
                raise CleaningError(f"genres.embeddings: file not found: {path}")
            if self.representation == "pieces" and not pieces_path(path).is_file():
                raise CleaningError(f"genres.embeddings: {pieces_path(path)} (its sentencepiece model) not found")

    def params(self) -> EmbeddingParams:
        return EmbeddingParams(
            representation=self.representation,
            model=self.word_model,
            dim=self.dim,
            epoch=self.epoch,
            min_count=self.min_count,
            window=self.window,
            threads=self.threads,
        )


def _resolve(name: str) -> Path:
    """An absolute path: as given if it exists or is absolute, else under the project root."""
    path = Path(name).expanduser()
    return (path if path.is_absolute() or path.exists() else PROJECT_ROOT / path).resolve()


def auto_k(docs: int, max_k: int) -> int:
    """About sqrt(N) clusters: ~17 for the bundled sample, 1,000 at 1M documents, 10,000 at 100M."""
    return max(2, min(max_k, round(math.sqrt(docs))))


def auto_domains(k: int) -> int:
    return max(2, round(math.sqrt(k))) if k >= 8 else 0


@register
class Genres(Stage):
    """Topic clusters for balancing: adds cluster, domain, genre_sim (cosine to the centroid), genre_note."""

    name = "genres"
    Config = GenresConfig
    columns: ClassVar[dict[str, pa.DataType]] = {
        "cluster": pa.int32(),
        "domain": pa.int32(),
        "genre_sim": pa.float32(),
        "genre_note": pa.string(),
        "genre_model": pa.string(),  # the id of the model the cluster ids belong to (weights check it)
    }

    def __init__(self, config: GenresConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        if artifacts is None:
            raise CleaningError("genres: the corpus-wide step did not run (no artifacts)")
        self.centroids = np.load(artifacts / CENTROIDS)
        self.domain_of = np.load(artifacts / DOMAINS)
        self.model_id: str | None = None
        self.embedder = None
        if len(self.centroids):
            card = gm.read_card(artifacts)
            self.model_id = card["id"]
            self.embedder = sample.embedder_for(model_spec(artifacts, card))

    @classmethod
    def data_fingerprint(cls, config: GenresConfig) -> str:
        parts = []
        if config.model != AUTO and not config.refit:
            parts.append(gm.read_card(Path(config.model))["id"])
        if config.embeddings:
            model = Path(config.embeddings)
            files = [model, pieces_path(model)] if config.representation == "pieces" else [model]
            parts += [file_hash(p) if p.is_file() else "missing" for p in files]
        return ",".join(parts)

    @classmethod
    def prepare(cls, config: GenresConfig, ctx: PrepareContext) -> None:
        """Reuse the genre model, or train embeddings (unless given), embed a sample, fit k-means and domains."""
        sizes = [sample.shard_size(s) for s in ctx.shards]
        docs, text_bytes = sum(n for n, _ in sizes), sum(b for _, b in sizes)
        info: dict[str, object] = {"documents": docs, "text_bytes": text_bytes}
        home = model_home(config, ctx.output)
        if home is not None and not config.refit and gm.is_model(home):
            _check_settings(config, gm.read_card(home), home)
            card = gm.copy_model(home, ctx.workdir)
            k = len(np.load(ctx.workdir / CENTROIDS))
            ctx.log(f"reusing genre model {card['id']} ({k:,} clusters) from {home}; genres.refit=true fits a new one")
            write_json_atomic(ctx.workdir / INFO, {**info, "model": card, "reused": str(home)})
            return
        info["params"] = config.params().describe()
        scratch = ctx.workdir / "scratch"
        scratch.mkdir()
        try:
            if docs and not config.embeddings:
                info["training"] = _train_embeddings(config, ctx, scratch, text_bytes, ctx.workdir / EMBEDDINGS)
            elif docs:
                _copy_embeddings(config, ctx.workdir)
            k = min(config.k or auto_k(docs, config.max_k), docs)
            fit = _fit(config, ctx, scratch, docs, k) if docs else None
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        centroids = fit.centroids if fit else np.empty((0, config.dim), np.float32)
        np.save(ctx.workdir / CENTROIDS, centroids)
        np.save(ctx.workdir / DOMAINS, fit.domain_of if fit else np.empty(0, np.int32))
        if fit:
            info.update(fit=fit_info(fit))
            embed = {
                "method": config.method,
                "representation": config.representation,
                "sif_a": config.sif_a,
                "dim": config.dim,
            }
            fitted_on = {"documents": docs, "text_bytes": text_bytes, "k": len(centroids), "settings": settings(config)}
            card = gm.write_card(ctx.workdir, embed, fitted_on)
            info["model"] = card
            if home is not None:
                gm.publish(ctx.workdir, home)
                ctx.log(f"genre model {card['id']} ({len(centroids):,} clusters) saved to {home}; later runs reuse it")
        write_json_atomic(ctx.workdir / INFO, info)

    def process(self, docs: list[Doc]) -> StageResult:
        result = StageResult(kept=docs)
        if not docs:
            return result
        assert self.embedder is not None
        vectors, counts = self.embedder.embed([d.text for d in docs])
        labels, sims = kmeans.assign(vectors, self.centroids)
        k = len(self.centroids)
        for doc, label, sim, count in zip(docs, labels.tolist(), sims.tolist(), counts.tolist(), strict=True):
            note = None
            if count == 0:  # no vector: a stable hash spreads these instead of piling them into one cluster
                label, sim, note = xxhash.xxh3_64_intdigest(doc.text.encode()) % k, 0.0, NO_TOKENS
                result.counters["genres." + NO_TOKENS] += 1
            domain = int(self.domain_of[label])
            doc.fields.update(cluster=label, domain=domain, genre_sim=sim, genre_note=note, genre_model=self.model_id)
        return result


def _train_embeddings(
    config: GenresConfig, ctx: PrepareContext, scratch: Path, text_bytes: int, model: Path
) -> dict[str, object]:
    """Sample text, then sentencepiece (pieces), then fastText vectors or the LSA projection."""
    rate = min(1.0, config.train_mb * 1e6 / max(1, text_bytes))
    jobs = [
        sample.TextJob(s, scratch / f"train-{i:05d}.txt", rate, max_doc_chars=20_000) for i, s in enumerate(ctx.shards)
    ]
    counts = ctx.map(sample.write_training_text, jobs, "sample training text")
    sample_docs, sample_chars = sum(d for d, _ in counts), sum(c for _, c in counts)
    raw = scratch / "sample.txt"
    with raw.open("wb") as out:
        for job in jobs:
            with job.out.open("rb") as part:
                shutil.copyfileobj(part, out)
            job.out.unlink()
    params = config.params()
    started = time.perf_counter()
    pieces = None
    if config.representation == "pieces":
        ctx.log(f"training sentencepiece ({config.pieces_vocab:,} pieces) on {sample_chars / 1e6:.1f} M chars")
        trained = train_pieces(raw, scratch / "pieces", config.pieces_vocab, params.threads)
        pieces = load_pieces(str(shutil.move(trained, pieces_path(model))))
    if config.method == "lsa":
        ctx.log(f"fitting LSA ({config.dim} dimensions) on {sample_docs:,} docs")
        fitted = lsa.fit(pieces_path(model), raw, model.with_name(LSA_MODEL), config.dim, config.seed, config.lsa_bits)
        seconds = time.perf_counter() - started
        ctx.log(f"LSA fitted in {seconds:.0f} s")
        return {"sample_docs": sample_docs, "sample_chars": sample_chars, "seconds": round(seconds, 2), **fitted}
    tokens_file = scratch / "tokens.txt"
    with raw.open(encoding="utf-8") as src, tokens_file.open("w", encoding="utf-8") as dst:
        for line in src:
            dst.write(tokens(line, config.representation, pieces) + "\n")
    ctx.log(f"training embeddings: {sample_docs:,} docs, {sample_chars / 1e6:.1f} M chars, {params.threads} threads")
    train(tokens_file, params, model, seed=config.seed)
    seconds = time.perf_counter() - started
    ctx.log(f"embeddings trained in {seconds:.0f} s")
    return {"sample_docs": sample_docs, "sample_chars": sample_chars, "seconds": round(seconds, 2)}


def _fit(config: GenresConfig, ctx: PrepareContext, scratch: Path, docs: int, k: int) -> kmeans.Fit:
    rate = min(1.0, config.fit_docs / docs)
    spec = embed_spec(config, ctx.workdir, common=None)
    jobs = [sample.VectorJob(s, scratch / f"fit-{i:05d}.npy", rate, spec) for i, s in enumerate(ctx.shards)]
    rows = sum(ctx.map(sample.write_sample_vectors, jobs, "embed the k-means sample"))
    if not rows:
        raise CleaningError("genres: no document has a known token; nothing to cluster (check genres.min_count)")
    domains = auto_domains(k) if config.domains < 0 else config.domains
    ctx.log(f"fitting k-means: k={k:,}, {domains} domains, on {rows:,} documents")
    common = ctx.workdir / COMMON if config.remove_common and config.method == "fasttext" else None
    job = FitJob([j.out for j in jobs], k, domains, config.seed, common)
    (fit,) = ctx.map(fit_sample, [job], "fit k-means")  # in a worker: the driver holds no vectors
    ctx.log(f"k-means fitted in {fit.seconds:.0f} s")
    return fit


@dataclass(frozen=True)
class FitJob:
    parts: list[Path]  # .npy files of sample vectors, one per shard
    k: int
    domains: int
    seed: int
    common: Path | None  # where to save the common direction removed first (None: keep it)


def fit_sample(job: FitJob) -> kmeans.Fit:
    """Fit k-means (and domains) on the sample's vectors; bounded by genres.fit_docs, not the corpus."""
    vectors = np.concatenate([v for v in (np.load(p) for p in job.parts) if len(v)])
    if job.common is not None:
        common = common_direction(vectors)
        np.save(job.common, common)
        vectors = vectors - np.outer(vectors @ common, common)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    started = time.perf_counter()
    with threadpool_limits(os.cpu_count()):  # the only task running: a Ray worker defaults to one thread
        fit = kmeans.fit(vectors, job.k, job.domains, job.seed)
    fit.seconds = round(time.perf_counter() - started, 2)
    return fit


def pieces_path(model: Path) -> Path:
    """The sentencepiece model that goes with an embeddings .bin (pieces representation)."""
    return model.with_suffix(".pieces.model")


def embed_spec(config: GenresConfig, artifacts: Path, common: Path | None) -> sample.EmbedSpec:
    """How to embed while fitting (the config's settings; the model files are in `artifacts`)."""
    return _spec(artifacts, config.method, config.representation, config.sif_a, common)


def model_spec(folder: Path, card: dict[str, object]) -> sample.EmbedSpec:
    """How to embed with a fitted genre model: its own settings, whatever today's config says."""
    embed = card["embed"]
    assert isinstance(embed, dict)
    common = folder / COMMON if (folder / COMMON).is_file() else None
    method = str(embed.get("method", "fasttext"))
    return _spec(folder, method, embed["representation"], float(embed["sif_a"]), common)


def _spec(folder: Path, method: str, representation: str, sif_a: float, common: Path | None) -> sample.EmbedSpec:
    model = folder / EMBEDDINGS
    pieces = pieces_path(model) if representation == "pieces" else None
    vectors = folder / LSA_MODEL if method == "lsa" else model
    return sample.EmbedSpec(vectors, representation, sif_a, pieces, common, method)


NOT_FIT_SETTINGS = ("threads", "model", "refit")  # change nothing a fit decides


def settings(config: GenresConfig) -> dict[str, object]:
    """The options that decide a fit, as recorded on the model's card."""
    return {k: v for k, v in asdict(config).items() if k not in NOT_FIT_SETTINGS}


def _check_settings(config: GenresConfig, card: dict[str, object], home: Path) -> None:
    """A reused model ignores today's fit options: refuse a change instead of ignoring it silently."""
    fitted = card.get("fitted_on", {})
    was = fitted.get("settings", {}) if isinstance(fitted, dict) else {}
    changed = [f"{k}: {was[k]!r} → {v!r}" for k, v in settings(config).items() if k in was and was[k] != v]
    if changed:
        raise CleaningError(
            f"genres: {', '.join(changed)} since genre model {card['id']} ({home}) was fitted; "
            "set genres.refit=true to fit a new model (new cluster ids), or restore the setting"
        )


def model_home(config: GenresConfig, output: Path | None) -> Path | None:
    """Where the genre model lives: OUTPUT/genre-model for auto (None outside a run), else the given folder."""
    if config.model != AUTO:
        return Path(config.model)
    return output / gm.OUTPUT_NAME if output is not None else None


def _copy_embeddings(config: GenresConfig, dest: Path) -> None:
    """Given embeddings become part of the model folder, so the model is whole without them."""
    shutil.copyfile(config.embeddings, dest / EMBEDDINGS)
    if config.representation == "pieces":
        shutil.copyfile(pieces_path(Path(config.embeddings)), pieces_path(dest / EMBEDDINGS))


def fit_info(fit: kmeans.Fit) -> dict[str, object]:
    return {
        "k": len(fit.centroids),
        "domains": int(fit.domain_of.max()) + 1 if len(fit.domain_of) else 0,
        "fit_docs": int(fit.sizes.sum()),
        "inertia": round(fit.inertia, 4),
        "seconds": fit.seconds,
        "fit_sizes": fit.sizes.tolist(),
    }


def read_info(artifacts: Path) -> dict[str, object]:
    return json.loads((artifacts / INFO).read_text(encoding="utf-8"))
