"""tokenize: sentencepiece ids per document, then Megatron/GPT-NeoX `.bin`/`.idx` parts and a mixture.

- corpus-wide step: train the tokenizer on a sample spread evenly over genre clusters, or take
  the given `.model`; fix the held-out shares.
- per shard (pure, batched): encode each document, append EOD, choose its group (corpus,
  domain or cluster) and split (train/valid/test, by hash of id). Columns tokens, n_tokens,
  n_chars, group, split are added, so the final shards record what went where.
- closing step: regroup each shard's tokens (spills), tokenize the extra corpora, cut parts of
  `part_mb`, and write `OUTPUT/tokens/` with `manifest.json`, `mixture.yaml`, `neox_data.yml`.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.parquet as pq

from cleaning.document import Doc, Reject, StageResult
from cleaning.errors import CleaningError
from cleaning.genres.model import models_in
from cleaning.genres.sample import shard_size
from cleaning.genres.weights import check_model, load_weights
from cleaning.readers import ReaderConfig, is_supported
from cleaning.shards import file_hash, read_json, write_json_atomic
from cleaning.stage import FinishContext, PrepareContext, Stage, register
from cleaning.tokenize import mixture
from cleaning.tokenize.parts import plan_parts, write_part
from cleaning.tokenize.spill import ExtraJob, Segment, SpillJob, spill_extra, spill_shard
from cleaning.tokenize.split import heldout_rates, split_of
from cleaning.tokenize.tokenizer import Tokenizer, TokenizerParams, load_tokenizer
from cleaning.tokenize.train import train_on_shards

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODEL = "tokenizer.model"
INFO = "tokenize.json"
TOKENIZER_CACHE = "tokenizer"  # under OUTPUT: the trained tokenizer and the key of its sample
GROUP_BY = ("none", "domain", "cluster")
_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


@dataclass
class ExtraCorpus:
    """An already-clean corpus (English, code, …) tokenized alongside, with its own weight."""

    name: str
    paths: list[str]
    weight: float = 1.0
    text_field: str = "text"
    id_field: str = "id"


@dataclass
class TokenizeConfig(TokenizerParams):
    """The tokenizer's training options (inherited), then where the tokens go."""

    model: str = field(default="", metadata={"help": "an existing sentencepiece .model; '' = train one"})
    eod: str = field(default="", metadata={"help": "end-of-document piece; '' = <|endoftext|>, else </s>"})
    group_by: str = field(default="none", metadata={"help": "output folders: none, domain or cluster"})
    name: str = field(default="ja", metadata={"help": "folder (and mixture name) of the corpus when group_by none"})
    part_mb: float = field(default=2048.0, metadata={"help": "MB of tokens per .bin part"})
    valid_fraction: float = field(default=0.001, metadata={"help": "share of documents held out for validation"})
    test_fraction: float = field(default=0.001, metadata={"help": "share of documents held out for test"})
    min_heldout_docs: int = field(default=10, metadata={"help": "raise the shares so small corpora get this many"})
    weights: str = field(default="", metadata={"help": "weights.yaml for the mixture when no balance stage ran"})
    extra: list[ExtraCorpus] = field(default_factory=list, metadata={"help": "additional clean corpora"})
    data_root: str = field(default="", metadata={"help": "path of tokens/ on the training machine ('' = here)"})

    def __post_init__(self) -> None:
        super().__post_init__()  # the tokenizer options
        if self.group_by not in GROUP_BY:
            raise CleaningError(f"tokenize.group_by must be one of {', '.join(GROUP_BY)}")
        if self.part_mb <= 0 or not 0 <= self.valid_fraction < 0.5 or not 0 <= self.test_fraction < 0.5:
            raise CleaningError("tokenize: needs part_mb > 0 and held-out fractions in [0, 0.5)")
        if self.model:
            self.model = str(_resolve(self.model))
            if not Path(self.model).is_file():
                raise CleaningError(f"tokenize.model: file not found: {self.model}")
        if self.weights:
            self.weights = str(_resolve(self.weights))
            mixture.check_weights(load_weights(self.weights), self.group_by, self.weights)
        names = [self.name] + [e.name for e in self.extra]
        for name in names:
            if not _NAME.match(name) or name in ("valid", "test") or name.startswith(("cluster-", "domain-")):
                raise CleaningError(f"tokenize: {name!r} cannot name a corpus (letters, digits, . _ -; not valid/test)")
        if len(set(names)) != len(names):
            raise CleaningError(f"tokenize: corpus names must differ: {names}")
        for extra in self.extra:
            if extra.weight < 0:
                raise CleaningError(f"tokenize.extra {extra.name}: weight must be >= 0")
            extra.paths = [str(p) for p in extra_files(extra)]

    def params(self) -> TokenizerParams:
        return TokenizerParams(**{f.name: getattr(self, f.name) for f in fields(TokenizerParams)})


def _resolve(path: str) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() or p.exists() else PROJECT_ROOT / p).resolve()


def extra_files(extra: ExtraCorpus) -> list[Path]:
    """The files of an extra corpus: files, folders (recursively) and globs, sorted."""
    found: set[Path] = set()
    for pattern in extra.paths:
        if glob.has_magic(pattern):
            roots = [pattern] if os.path.isabs(pattern) else [pattern, str(PROJECT_ROOT / pattern)]
            hits = [glob.glob(os.path.expanduser(r), recursive=True) for r in roots]
            matches = [Path(m).resolve() for m in next((h for h in hits if h), [])]
        else:
            path = _resolve(pattern)
            matches = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] if path.is_file() else []
        matches = [m for m in matches if is_supported(m)]
        if not matches:
            raise CleaningError(f"tokenize.extra {extra.name}: no input files match {pattern!r}")
        found.update(matches)
    return sorted(found)


@register
class Tokenize(Stage):
    """Token ids per document, then sharded Megatron/GPT-NeoX token files with a mixture config."""

    name = "tokenize"
    Config = TokenizeConfig
    products = "tokens"
    finish_options = frozenset({"part_mb", "weights", "extra", "data_root"})
    columns: ClassVar[dict[str, pa.DataType]] = {
        "tokens": pa.list_(pa.int32()),
        "n_tokens": pa.int32(),
        "n_chars": pa.int32(),  # lets the closing step count characters without reading the text again
        "group": pa.string(),
        "split": pa.string(),
    }

    def __init__(self, config: TokenizeConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        if artifacts is None:
            raise CleaningError("tokenize: the corpus-wide step did not run (no artifacts)")
        info = read_json(artifacts / INFO)
        self.rates: tuple[float, float] = tuple(info["rates"])  # type: ignore[assignment]
        self.tokenizer: Tokenizer | None = None
        if info["tokenizer"]:
            self.tokenizer = load_tokenizer(str(artifacts / MODEL), config.eod)

    @classmethod
    def data_fingerprint(cls, config: TokenizeConfig) -> str:
        return file_hash(Path(config.model)) if config.model else ""

    @classmethod
    def finish_fingerprint(cls, config: TokenizeConfig) -> str:
        """The weights file, and extra corpora by path, size and modification time."""
        stats = [(p, Path(p).stat().st_size, Path(p).stat().st_mtime_ns) for e in config.extra for p in e.paths]
        return repr(stats) + (file_hash(Path(config.weights)) if config.weights else "")

    @classmethod
    def prepare(cls, config: TokenizeConfig, ctx: PrepareContext) -> None:
        """Check the input columns, fix the held-out shares, and train or copy the tokenizer."""
        schema = pq.ParquetFile(ctx.shards[0]).schema_arrow if ctx.shards else pa.schema([])
        need = {"domain": ["domain"], "cluster": ["cluster", "domain"]}.get(config.group_by, [])
        missing = [c for c in need if c not in schema.names]
        if ctx.shards and missing:
            raise CleaningError(f"tokenize.group_by {config.group_by} needs the genres stage before it (no {missing})")
        balanced = "repeat" in schema.names
        docs = sum(shard_size(s)[0] for s in ctx.shards)
        rates = heldout_rates(docs, config.valid_fraction, config.test_fraction, config.min_heldout_docs)
        model = ctx.workdir / MODEL
        info = {"rates": rates, "documents": docs, "balanced": balanced, "training": None, "tokenizer": None}
        if config.model:
            shutil.copyfile(config.model, model)
        elif docs:
            # on the corpus before balance (its output plus what it removed), so weights never change token ids
            removed = sorted((ctx.output / "rejects" / "balance").glob("*.parquet")) if balanced and ctx.output else []
            cache = ctx.output / TOKENIZER_CACHE if ctx.output else None
            info["training"] = train_on_shards(ctx, config.params(), model, also=removed, cache=cache)
        else:
            ctx.log("no documents left to train a tokenizer on")
        if model.is_file():
            info["tokenizer"] = Tokenizer(model, config.eod).info.to_dict()
        write_json_atomic(ctx.workdir / INFO, info)

    def process(self, docs: list[Doc]) -> StageResult:
        result = StageResult()
        if not docs:
            return result
        if self.tokenizer is None:
            raise CleaningError("tokenize: documents arrived but no tokenizer was trained (rerun with --force)")
        for doc, ids in zip(docs, self.tokenizer.encode([d.text for d in docs]), strict=True):
            if len(ids) <= 1:
                result.rejected.append(Reject(doc, "tokenize.empty", "the text encodes to no tokens"))
                continue
            doc.fields.update(
                tokens=ids,
                n_tokens=len(ids) - 1,
                n_chars=len(doc.text),
                group=self.group_of(doc),
                split=self.split_of(doc),
            )
            result.counters["tokens"] += len(ids)
            result.kept.append(doc)
        return result

    def group_of(self, doc: Doc) -> str:
        if self.config.group_by == "cluster":
            return f"cluster-{doc.fields['cluster']:05d}"
        if self.config.group_by == "domain":
            return f"domain-{doc.fields['domain']:03d}"
        return self.config.name

    def split_of(self, doc: Doc) -> str:
        return split_of(doc.id, *self.rates)

    @classmethod
    def finish(cls, config: TokenizeConfig, ctx: FinishContext) -> dict[str, Any]:
        """Spill every shard, tokenize extra corpora, write parts, then the manifest and mixture."""
        assert ctx.artifacts is not None
        info = read_json(ctx.artifacts / INFO)
        if config.weights and info["balanced"]:
            raise CleaningError("tokenize.weights: the balance stage already applied weights; leave this empty")
        if config.weights and ctx.shards:
            models = set().union(*ctx.map(models_in, ctx.shards, "read genre model ids"))
            check_model(load_weights(config.weights), config.weights, models)
        tokenizer = info["tokenizer"]
        if tokenizer is None:
            if config.extra:
                raise CleaningError("tokenize: no documents to train a tokenizer on; give tokenize.model for extra")
            ctx.products.mkdir(parents=True, exist_ok=True)
            summary = {"tokens": 0, "documents": 0, "parts": 0, "chars_per_token": 0.0, "tokenizer_sha256": None}
            write_json_atomic(ctx.products / mixture.MANIFEST, {**summary, "parts": []})
            ctx.log("no documents: no token files written")
            return summary
        spills_dir = ctx.workdir / "spills"
        jobs = [
            SpillJob(s, spills_dir / s.stem, h, tokenizer["dtype"]) for s, h in zip(ctx.shards, ctx.hashes, strict=True)
        ]
        spilled = ctx.map(spill_shard, jobs, "regroup tokens")
        spills = [(job.prefix, segments) for job, segments in zip(jobs, spilled, strict=True)]
        extras = _tokenize_extras(config, ctx, info)
        spills += [(prefix, result["segments"]) for prefix, _, result in extras]
        ctx.products.mkdir(parents=True, exist_ok=True)
        model = ctx.products / MODEL
        shutil.copyfile(ctx.artifacts / MODEL, model)
        meta = {"tokenizer_sha256": tokenizer["sha256"], "eod_id": tokenizer["eod_id"]}
        part_tokens = max(1, int(config.part_mb * 1e6 / (2 if tokenizer["dtype"] == "uint16" else 4)))
        plan = plan_parts(spills, ctx.products, part_tokens, tokenizer["dtype"], meta)
        _remove_stale(ctx.products, {job.prefix for job in plan})
        parts = ctx.map(write_part, plan, "write token parts")
        groups = _groups(config, spills)
        summary = mixture.write_all(config, ctx.products, parts, info, extras, groups, model)
        shutil.rmtree(spills_dir, ignore_errors=True)
        ctx.log(
            f"{summary['tokens']:,} tokens in {len(parts)} parts under {ctx.products} "
            f"({summary['chars_per_token']:.2f} chars/token)"
        )
        return summary


def _tokenize_extras(
    config: TokenizeConfig, ctx: FinishContext, info: dict[str, Any]
) -> list[tuple[Path, ExtraCorpus, dict[str, Any]]]:
    jobs, owners = [], []
    model = str(ctx.artifacts / MODEL) if ctx.artifacts else ""
    for extra in config.extra:
        reader = ReaderConfig(text_field=extra.text_field, id_field=extra.id_field)
        common = Path(os.path.commonpath([str(Path(p).parent) for p in extra.paths]))
        for path in map(Path, extra.paths):
            source = str(path.relative_to(common))
            stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source)
            st = path.stat()
            key = f"{info['tokenizer']['sha256']}:{extra.name}:{source}:{st.st_size}:{st.st_mtime_ns}:{info['rates']}"
            jobs.append(
                ExtraJob(
                    path,
                    source,
                    extra.name,
                    ctx.workdir / "spills" / f"extra-{extra.name}-{stem}",
                    ctx.products / "_rejects" / extra.name / f"{stem}.parquet",
                    key,
                    model,
                    config.eod,
                    tuple(info["rates"]),
                    reader,
                )
            )
            owners.append(extra)
    results = ctx.map(spill_extra, jobs, "tokenize extra corpora") if jobs else []
    return [(job.prefix, owner, res) for job, owner, res in zip(jobs, owners, results, strict=True)]


def _groups(config: TokenizeConfig, spills: list[tuple[Path, list[Segment]]]) -> dict[str, dict[str, Any]]:
    """Per group: its corpus and domain, train documents and tokens (repeats included), and the
    unique documents, tokens and characters of every split (for tokens per character)."""
    extras = {e.name for e in config.extra}
    groups: dict[str, dict[str, Any]] = {}
    for _, segments in spills:
        for seg in segments:
            g = groups.setdefault(
                seg.group,
                {
                    "corpus": seg.group if seg.group in extras else config.name,
                    "domain": seg.domain,
                    **dict.fromkeys(("documents", "tokens", "unique_docs", "unique_tokens", "chars"), 0),
                },
            )
            g["unique_docs"] += seg.unique_docs
            g["unique_tokens"] += seg.unique_tokens
            g["chars"] += seg.chars
            if seg.split == "train":
                g["documents"] += seg.docs
                g["tokens"] += seg.tokens
    return groups


def _remove_stale(products: Path, planned: set[Path]) -> None:
    """Parts of an earlier plan that this one does not write would be picked up by mistake."""
    if not products.is_dir():
        return
    for folder in products.iterdir():
        if not folder.is_dir() or folder.name.startswith("_"):
            continue
        for f in folder.iterdir():
            prefix = folder / f.name.split(".", 1)[0]
            if prefix not in planned:
                f.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
