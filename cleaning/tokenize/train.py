"""Train the tokenizer on a run's shards: a sample spread evenly over genre clusters, then sentencepiece.

Used by the tokenize stage's corpus-wide step and by `cleaning tokenizer train`.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from cleaning.genres.sample import shard_size
from cleaning.stage import PrepareContext
from cleaning.tokenize.sample import SampleJob, cluster_docs, cluster_rates, write_sample
from cleaning.tokenize.tokenizer import TokenizerParams, train_tokenizer


def train_on_shards(ctx: PrepareContext, params: TokenizerParams, model: Path) -> dict[str, Any]:
    """Sample `params.sample_mb` spread evenly over clusters, then train sentencepiece on it."""
    sizes = sum(ctx.map(cluster_docs, ctx.shards, "count documents per cluster"), start=Counter())
    corpus_docs, text_bytes = map(sum, zip(*(shard_size(s) for s in ctx.shards), strict=True)) if ctx.shards else (0, 0)
    mean_doc_bytes = text_bytes / max(1, corpus_docs)
    rates = cluster_rates(sizes, params.sample_mb * 1e6 / max(1.0, mean_doc_bytes))
    scratch = ctx.workdir / "sample"
    scratch.mkdir(exist_ok=True)
    jobs = [SampleJob(s, scratch / f"{i:05d}.txt", rates) for i, s in enumerate(ctx.shards)]
    counts = ctx.map(write_sample, jobs, "sample training text")
    text = scratch / "sample.txt"
    with text.open("wb") as out:
        for job in jobs:
            with job.out.open("rb") as part:
                shutil.copyfileobj(part, out)
    threads = params.threads or os.cpu_count() or 1
    docs, size = sum(d for d, _ in counts), sum(b for _, b in counts)
    ctx.log(f"training the tokenizer ({params.model_type}, {params.vocab_size:,} pieces) on {size / 1e6:.1f} MB")
    started = time.perf_counter()
    try:
        train_tokenizer(text, model, params, threads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.perf_counter() - started
    ctx.log(f"tokenizer trained in {seconds:.0f} s")
    return {"docs": docs, "bytes": size, "clusters": len(sizes), "seconds": round(seconds, 2)}


def write_card(
    model: Path, tokenizer: Any, params: TokenizerParams, training: dict[str, Any], shards: list[str]
) -> Path:
    """`MODEL.json` next to the model: how it was trained, its hash and EOD, for whoever reuses it."""
    from dataclasses import asdict

    from cleaning.shards import write_json_atomic

    card = model.with_suffix(".json")
    info = {**tokenizer.info.to_dict(), "params": asdict(params), "training": training, "shards": shards}
    write_json_atomic(card, info)
    return card
