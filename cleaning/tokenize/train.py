"""Train the tokenizer on a run's shards: a sample spread evenly over genre clusters, then sentencepiece.

Used by the tokenize stage's corpus-wide step and by `cleaning tokenizer train`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cleaning.genres.sample import shard_size
from cleaning.shards import read_json, write_json_atomic
from cleaning.stage import PrepareContext, fingerprint
from cleaning.tokenize.sample import SampleJob, cluster_docs, cluster_rates, write_sample
from cleaning.tokenize.tokenizer import TokenizerParams, train_tokenizer

CACHE_MODEL = "tokenizer.model"
CACHE_CARD = "training.json"


def train_on_shards(
    ctx: PrepareContext, params: TokenizerParams, model: Path, also: list[Path] | None = None, cache: Path | None = None
) -> dict[str, Any]:
    """Sample `params.sample_mb` spread evenly over clusters, then train sentencepiece on it.

    `also` adds files of documents to sample from (what balance removed, so the sample is the
    corpus before weights). sentencepiece does not train the same bytes twice, so with `cache`
    (a folder) a model trained on the very same sample and options is reused, not retrained."""
    files = [*ctx.shards, *(also or [])]
    sizes = sum(ctx.map(cluster_docs, files, "count documents per cluster"), start=Counter())
    corpus_docs, text_bytes = map(sum, zip(*(shard_size(s) for s in files), strict=True)) if files else (0, 0)
    mean_doc_bytes = text_bytes / max(1, corpus_docs)
    rates = cluster_rates(sizes, params.sample_mb * 1e6 / max(1.0, mean_doc_bytes))
    scratch = ctx.workdir / "sample"
    scratch.mkdir(exist_ok=True)
    jobs = [SampleJob(s, scratch / f"{i:05d}.txt", rates) for i, s in enumerate(files)]
    counts = ctx.map(write_sample, jobs, "sample training text")
    docs, size = sum(c[0] for c in counts), sum(c[1] for c in counts)
    key = fingerprint([json.dumps(asdict(params), sort_keys=True), str(docs), str(sum(c[2] for c in counts) % 2**64)])
    reused = _cached(cache, key, model)
    if reused:
        shutil.rmtree(scratch, ignore_errors=True)
        ctx.log(f"reusing the tokenizer trained on this same sample ({cache}); token ids unchanged")
        return {**reused, "reused": str(cache)}
    text = scratch / "sample.txt"
    with text.open("wb") as out:
        for job in jobs:
            with job.out.open("rb") as part:
                shutil.copyfileobj(part, out)
    threads = params.threads or os.cpu_count() or 1
    ctx.log(f"training the tokenizer ({params.model_type}, {params.vocab_size:,} pieces) on {size / 1e6:.1f} MB")
    started = time.perf_counter()
    try:
        train_tokenizer(text, model, params, threads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - started
    ctx.log(f"tokenizer trained in {seconds:.0f} s")
    training = {"docs": docs, "bytes": size, "clusters": len(sizes), "seconds": round(seconds, 2), "sample_key": key}
    if cache is not None:
        _keep(cache, model, training)
    return training


def _cached(cache: Path | None, key: str, model: Path) -> dict[str, Any] | None:
    """Copy the cached tokenizer to `model` if it was trained on a sample with this key."""
    if cache is None or not (cache / CACHE_CARD).is_file() or not (cache / CACHE_MODEL).is_file():
        return None
    training = read_json(cache / CACHE_CARD)
    if training.get("sample_key") != key:
        return None
    shutil.copyfile(cache / CACHE_MODEL, model)
    return training


def _keep(cache: Path, model: Path, training: dict[str, Any]) -> None:
    """Save the model and its sample key (model first: a card never points at a missing model)."""
    cache.mkdir(parents=True, exist_ok=True)
    (cache / CACHE_CARD).unlink(missing_ok=True)
    tmp = cache / (CACHE_MODEL + ".tmp")
    shutil.copyfile(model, tmp)
    os.replace(tmp, cache / CACHE_MODEL)
    write_json_atomic(cache / CACHE_CARD, training)


def write_card(
    model: Path, tokenizer: Any, params: TokenizerParams, training: dict[str, Any], shards: list[str]
) -> Path:
    """`MODEL.json` next to the model: how it was trained, its hash and EOD, for whoever reuses it."""
    card = model.with_suffix(".json")
    info = {**tokenizer.info.to_dict(), "params": asdict(params), "training": training, "shards": shards}
    write_json_atomic(card, info)
    return card
