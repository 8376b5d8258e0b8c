"""The sentencepiece tokenizer: train one on the cleaned corpus, load it, encode batches with an EOD.

Defaults suit Japanese pretraining: unigram, 32k pieces (ids fit uint16), byte fallback so no
character becomes <unk>, digits split, no dummy prefix, identity normalisation (the normalize
stage already applied NFKC) and whitespace kept, so `decode(encode(text)) == text`. Newline is a
piece of its own, and `<|endoftext|>` is a control piece: GPT-NeoX's SPMTokenizer takes it as EOD.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.childprocess import call, check_saved
from cleaning.errors import CleaningError
from cleaning.shards import file_sha256
from cleaning.spm_paths import drop_training_paths
from cleaning.tokenize.indexed import token_dtype

EOD_PIECE = "<|endoftext|>"
MODEL_TYPES = ("unigram", "bpe", "char", "word")


@dataclass
class TokenizerParams:
    """What `cleaning tokenizer train` and the tokenize stage's own training take."""

    vocab_size: int = field(default=32_000, metadata={"help": "pieces; below 65,500 the token files are uint16"})
    model_type: str = field(default="unigram", metadata={"help": "unigram, bpe, char or word"})
    character_coverage: float = field(default=0.9995, metadata={"help": "share of characters that get pieces"})
    byte_fallback: bool = field(default=True, metadata={"help": "rare characters become UTF-8 byte pieces"})
    split_digits: bool = field(default=True, metadata={"help": "every digit is its own piece"})
    sample_mb: float = field(default=100.0, metadata={"help": "MB of text sampled across clusters to train on"})
    threads: int = field(default=0, metadata={"help": "training threads; 0 = every core of this machine"})

    def __post_init__(self) -> None:
        if self.model_type not in MODEL_TYPES:
            raise CleaningError(f"tokenizer model_type must be one of {', '.join(MODEL_TYPES)}")
        if not 100 <= self.vocab_size <= 2**31 - 1 or not 0 < self.character_coverage <= 1 or self.sample_mb <= 0:
            raise CleaningError("tokenizer: needs vocab_size >= 100, 0 < character_coverage <= 1, sample_mb > 0")


def train_tokenizer(text_file: Path, model: Path, params: TokenizerParams, threads: int) -> Path:
    """Train on one sentence per line (a document's lines, see `write_sample`); writes `model`.
    Runs in a child process, so Ctrl-C is not held up by the training (`cleaning.childprocess`)."""
    call(
        "cleaning.tokenize.tokenizer:_train_tokenizer", str(text_file), str(model), asdict(params), threads,
        what="sentencepiece training",
    )  # fmt: skip
    return model


def _train_tokenizer(text_file_name: str, model_name: str, options: dict[str, Any], threads: int) -> None:
    import sentencepiece as spm

    text_file, model, params = Path(text_file_name), Path(model_name), TokenizerParams(**options)
    model.parent.mkdir(parents=True, exist_ok=True)
    prefix = model.with_suffix("")
    try:
        spm.SentencePieceTrainer.train(
            input=str(text_file),
            model_prefix=str(prefix),
            vocab_size=params.vocab_size,
            hard_vocab_limit=False,  # a small corpus gets a smaller vocabulary instead of an error
            model_type=params.model_type,
            character_coverage=params.character_coverage,
            byte_fallback=params.byte_fallback,
            split_digits=params.split_digits,
            add_dummy_prefix=False,
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            normalization_rule_name="identity",
            user_defined_symbols=["\n"],
            control_symbols=[EOD_PIECE],
            max_sentence_length=1 << 14,
            shuffle_input_sentence=True,
            input_sentence_size=10_000_000,
            num_threads=max(1, threads),
            minloglevel=2,
        )
    except RuntimeError as exc:
        raise CleaningError(f"sentencepiece training failed: {str(exc).splitlines()[0]}") from exc
    prefix.with_suffix(".vocab").unlink(missing_ok=True)
    trained = prefix.with_suffix(".model")
    drop_training_paths(trained)
    check_saved(trained, lambda path: spm.SentencePieceProcessor(model_file=path))
    if trained != model:
        trained.replace(model)


@dataclass(frozen=True)
class TokenizerInfo:
    """What every token shard records about the tokenizer that made it."""

    path: str
    sha256: str
    vocab_size: int
    eod_id: int
    eod_piece: str
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tokenizer:
    """A loaded model plus the EOD id appended to every document."""

    def __init__(self, model: Path, eod: str = "") -> None:
        import sentencepiece as spm

        if not model.is_file():
            raise CleaningError(f"tokenizer model not found: {model}")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(model))
        except (RuntimeError, OSError) as exc:
            raise CleaningError(f"{model} is not a sentencepiece model: {exc}") from exc
        self.eod_id, eod_piece = _eod(self.sp, eod, model)
        self.dtype = token_dtype(self.sp.vocab_size())
        self.info = TokenizerInfo(
            str(model), file_sha256(model), self.sp.vocab_size(), self.eod_id, eod_piece, self.dtype.name
        )

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids of each text followed by EOD, as arrays of the shard dtype (int32 in memory)."""
        out = []
        for ids in self.sp.encode(texts, out_type=int, num_threads=1):
            ids.append(self.eod_id)
            out.append(np.asarray(ids, dtype=np.int32))
        return out

    def decode(self, ids: np.ndarray | list[int]) -> str:
        return self.sp.decode([int(i) for i in ids if int(i) != self.eod_id])


def load_tokenizer(model: str, eod: str = "") -> Tokenizer:
    """One tokenizer per worker process and model file; a new model written to the same path (the
    next run in this process) is loaded again, not served from the cache."""
    st = Path(model).stat()
    return _load(model, eod, st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=2)
def _load(model: str, eod: str, size: int, mtime_ns: int) -> Tokenizer:
    return Tokenizer(Path(model), eod)


def _eod(sp: Any, eod: str, model: Path) -> tuple[int, str]:
    """The end-of-document piece: `eod` if given, else <|endoftext|> (GPT-NeoX's choice), else </s>."""
    unk = sp.unk_id()
    for piece in [eod] if eod else [EOD_PIECE, "</s>"]:
        pid = sp.piece_to_id(piece)
        if pid != unk or piece == sp.id_to_piece(unk):
            return pid, piece
    if not eod and sp.eos_id() >= 0:
        return sp.eos_id(), sp.id_to_piece(sp.eos_id())
    raise CleaningError(f"{model}: has no end-of-document piece {eod or EOD_PIECE!r}; set tokenize.eod to one it has")
