"""What the training run reads besides the parts: `manifest.json`, `mixture.yaml`, `neox_data.yml`.

A part's weight is its tokens times its group's data-lead weight; GPT-NeoX normalises the list
and samples each part in that proportion. When the balance stage ran, the weights are already in
the files (downsampled documents are gone, repeated ones written `repeat` times), so every group
of the corpus gets 1 here and weights are not applied twice. Extra corpora use their own weight.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cleaning.errors import CleaningError
from cleaning.genres.weights import Weights, load_weights
from cleaning.shards import write_json_atomic

if TYPE_CHECKING:
    from cleaning.stages.tokenize import ExtraCorpus, TokenizeConfig

MANIFEST = "manifest.json"
MIXTURE = "mixture.yaml"
NEOX = "neox_data.yml"


def check_weights(weights: Weights, group_by: str, path: str) -> None:
    """Weights finer than the output folders cannot be applied by mixing: say so before the run."""
    if group_by == "none" and (weights.domains or weights.clusters):
        raise CleaningError(f"{path}: per-domain/cluster weights need tokenize.group_by domain or cluster")
    if group_by == "domain" and weights.clusters:
        raise CleaningError(f"{path}: per-cluster weights need tokenize.group_by cluster (or the balance stage)")


def group_weight(config: TokenizeConfig, group: str, domain: int | None, balanced: bool) -> float:
    """The data-lead weight of one train group of the main corpus."""
    if balanced or not config.weights:
        return 1.0
    weights = load_weights(config.weights)
    if group.startswith("cluster-"):
        return weights.of(int(group.split("-")[1]), -1 if domain is None else domain)
    if group.startswith("domain-"):
        return weights.domains.get(int(group.split("-")[1]), weights.default)
    return weights.default


def write_all(
    config: TokenizeConfig,
    products: Path,
    parts: list[dict[str, Any]],
    info: dict[str, Any],
    extras: list[tuple[Path, ExtraCorpus, dict[str, Any]]],
    groups: dict[str, dict[str, Any]],
    model: Path,
) -> dict[str, Any]:
    """Write the three files; `groups` holds per group: corpus, domain, documents, tokens, chars."""
    extra_weight = {e.name: e.weight for e in config.extra}
    for name, g in groups.items():
        own = extra_weight.get(name)
        g["weight"] = own if own is not None else group_weight(config, name, g["domain"], info["balanced"])
    train = [p for p in parts if p["split"] == "train"]
    mass = {id(p): p["tokens"] * groups[p["group"]]["weight"] for p in train}
    total_mass = sum(mass.values()) or 1.0
    root = Path(config.data_root) if config.data_root else products.resolve()

    def prefix(part: dict[str, Any]) -> str:
        return str(root / part["path"])

    used = [p for p in train if mass[id(p)] > 0]
    held = {split: [p for p in parts if p["split"] == split] for split in ("valid", "test")}
    neox = {
        "train_data_paths": [prefix(p) for p in used],
        "train_data_weights": [round(mass[id(p)] / total_mass, 9) for p in used],
        "valid_data_paths": [prefix(p) for p in held["valid"]],
        "valid_data_weights": [float(p["tokens"]) for p in held["valid"]],
        "test_data_paths": [prefix(p) for p in held["test"]],
        "test_data_weights": [float(p["tokens"]) for p in held["test"]],
        "data_impl": "mmap",
        "tokenizer_type": "SPMTokenizer",
        "vocab_file": str(root / model.name),
    }
    header = (
        "# GPT-NeoX data settings written by `cleaning run` (tokenize stage): merge into your training config.\n"
        "# Weights are shares of training samples: each part's tokens x its group's weight (see mixture.yaml).\n"
    )
    _write_text(products / NEOX, header + yaml.safe_dump(neox, sort_keys=False, allow_unicode=True, width=1 << 16))

    tok = {**info["tokenizer"], "path": str(root / model.name)}
    weights_from = "balance stage (in the files)" if info["balanced"] else (config.weights or "none (all 1)")
    mixture = {
        "tokenizer": {k: tok[k] for k in ("sha256", "vocab_size", "eod_id", "eod_piece", "dtype")}
        | {"path": str(root / model.name)},
        "weights_from": weights_from,
        "train": [
            {
                "group": name,
                "corpus": g["corpus"],
                "parts": sum(1 for p in train if p["group"] == name),
                "documents": g["documents"],
                "tokens": g["tokens"],
                "weight": g["weight"],
                "share": round(sum(mass[id(p)] for p in train if p["group"] == name) / total_mass, 6),
            }
            for name, g in sorted(groups.items())
            if g["tokens"]
        ],
        **{
            split: {
                "parts": len(held[split]),
                "documents": sum(p["documents"] for p in held[split]),
                "tokens": sum(p["tokens"] for p in held[split]),
            }
            for split in ("valid", "test")
        },
    }
    note = "# Token mixture of this run. Edit pipelines/weights.yaml (or tokenize.extra weights) and rerun.\n"
    _write_text(products / MIXTURE, note + yaml.safe_dump(mixture, sort_keys=False, allow_unicode=True))

    main_chars = sum(g["chars"] for g in groups.values() if g["corpus"] == config.name)
    main_text_tokens = sum(g["unique_tokens"] - g["unique_docs"] for g in groups.values() if g["corpus"] == config.name)
    summary = {
        "tokens": sum(p["tokens"] for p in parts),
        "documents": sum(p["documents"] for p in parts),
        "parts": len(parts),
        "tokens_by_split": {s: sum(p["tokens"] for p in parts if p["split"] == s) for s in ("train", "valid", "test")},
        "chars_per_token": round(main_chars / main_text_tokens, 4) if main_text_tokens else 0.0,
        "tokenizer_sha256": tok["sha256"],
    }
    manifest = {
        **summary,
        "tokenizer": tok,
        "heldout_rates": {"valid": info["rates"][0], "test": info["rates"][1]},
        "groups": groups,
        "extra_files": [
            {"corpus": owner.name, "spill": prefix_path.name, **{k: v for k, v in res.items() if k != "segments"}}
            for prefix_path, owner, res in extras
        ],
        "parts": [{k: v for k, v in p.items() if k != "key"} for p in parts],
    }
    write_json_atomic(products / MANIFEST, manifest)
    return summary


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
