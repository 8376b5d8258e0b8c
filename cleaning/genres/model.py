"""A genre model: the files that decide which cluster a document falls in, kept as one folder with an id.

Cluster ids only mean something together with the model that made them. Weights a data lead
writes are for one model (`genre_model:` in weights.yaml), so the model is a versioned artifact:
fitted once, published next to the run (`OUTPUT/genre-model/`) and reused by later runs and
other corpora until someone refits it on purpose. Its id is a hash of its files' contents.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from cleaning.errors import CleaningError
from cleaning.shards import file_hash, read_json, write_json_atomic
from cleaning.stage import fingerprint

CARD = "genre-model.json"
EMBEDDINGS = "embeddings.bin"
LSA = "lsa.npz"
PIECES = "embeddings.pieces.model"
CENTROIDS = "centroids.npy"
COMMON = "common.npy"
DOMAINS = "domain_of.npy"
FILES = (EMBEDDINGS, LSA, PIECES, CENTROIDS, COMMON, DOMAINS)
OUTPUT_NAME = "genre-model"  # where a run publishes the model it fitted, under OUTPUT


def model_id(folder: Path) -> str:
    """`g-` and 12 hex digits of the hash of the model's files: equal files, equal id."""
    parts = [f"{name}={file_hash(folder / name)}" for name in FILES if (folder / name).is_file()]
    return "g-" + fingerprint(parts)[:12]


def write_card(folder: Path, embed: dict[str, Any], fitted_on: dict[str, Any]) -> dict[str, Any]:
    """Stamp a folder of model files with its id and how to embed with it; returns the card."""
    card = {"id": model_id(folder), "embed": embed, "fitted_on": fitted_on}
    write_json_atomic(folder / CARD, card)
    return card


def read_card(folder: Path) -> dict[str, Any]:
    """The card of a genre model folder; a missing or incomplete model is one clear line."""
    if not (folder / CARD).is_file():
        raise CleaningError(f"{folder}: not a genre model (no {CARD}); fit one with a run (genres.model=auto)")
    card = read_json(folder / CARD)
    embed = card.get("embed", {})
    vectors = LSA if embed.get("method") == "lsa" else EMBEDDINGS
    missing = [name for name in (vectors, CENTROIDS, DOMAINS) if not (folder / name).is_file()]
    if embed.get("representation") == "pieces" and not (folder / PIECES).is_file():
        missing.append(PIECES)
    if missing:
        raise CleaningError(f"{folder}: genre model {card.get('id', '?')} is missing {', '.join(missing)}")
    return card


def copy_model(source: Path, dest: Path) -> dict[str, Any]:
    """Copy a model's files into `dest` (a run's artifacts), checking its id against its contents."""
    card = read_card(source)
    dest.mkdir(parents=True, exist_ok=True)
    _copy_files(source, dest)
    if model_id(dest) != card["id"]:
        raise CleaningError(f"{source}: its files do not match genre model {card['id']} (edited by hand?); refit it")
    return card


def publish(source: Path, dest: Path) -> None:
    """Put a model's files at `dest` as a whole: copy beside it, then swap (a crash leaves the old one)."""
    tmp = dest.with_name(dest.name + ".tmp")
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    tmp.mkdir(parents=True)
    _copy_files(source, tmp)
    if dest.exists():
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def _copy_files(source: Path, dest: Path) -> None:
    """The model's files and card, and nothing else of the folder they are in."""
    for name in (*FILES, CARD):
        if (source / name).is_file():
            shutil.copyfile(source / name, dest / name)


def is_model(folder: Path) -> bool:
    return (folder / CARD).is_file()


def models_in(shard: Path) -> set[str]:
    """The genre model ids found in a shard's `genre_model` column (empty for shards before genres)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(shard)
    if "genre_model" not in pf.schema_arrow.names:
        return set()
    values = pc.unique(pf.read(columns=["genre_model"])["genre_model"]).to_pylist()
    return {v for v in values if v}
