"""Run the peer pipelines (datatrove, HojiChar) on the benchmark subset; runs inside bench/.venv-peers only.

Never imported by the project: `bench/pipeline_bench.py` calls it as
    bench/.venv-peers/bin/python bench/peers_worker.py CONFIG.json
CONFIG: {"input": JSONL of {"id", "text"}, "annotations": [JSONL of {"text", "label"}], "work": DIR,
         "out": RESULT.json, "threshold": 0.8, "vocab_size": 32000, "tokenizer_text": TXT}
Every timing is one process on one core. Per step it records seconds, documents and characters
kept, so the caller can set them against our stages on the same input.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

cfg = json.loads(Path(sys.argv[1]).read_text())
work = Path(cfg["work"])
shutil.rmtree(work, ignore_errors=True)  # datatrove skips tasks its logs say are done
work.mkdir(parents=True)
source = Path(cfg["input"])
docs = [json.loads(line) for line in source.open(encoding="utf-8")]
total_chars = sum(len(d["text"]) for d in docs)


def kept(folder: Path) -> tuple[int, int]:
    n = chars = 0
    for f in sorted(folder.glob("*.jsonl")):
        for line in f.open(encoding="utf-8"):
            n += 1
            chars += len(json.loads(line)["text"])
    return n, chars


def datatrove_filters() -> dict:
    """Gopher/C4 quality filters (≈ our rules) and a fastText filter (≈ our quality), each timed alone."""
    import fasttext
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FastTextClassifierFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    # the same hand labels our quality stage trains on, as a datatrove user would feed fastText: raw text
    train = work / "ft-train.txt"
    with train.open("w", encoding="utf-8") as f:
        for path in cfg["annotations"]:
            for line in Path(path).read_text(encoding="utf-8").splitlines():
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                f.write(f"__label__{rec['label']} {' '.join(rec['text'].split())}\n")
    started = time.perf_counter()
    model = fasttext.train_supervised(str(train), epoch=25, thread=1, verbose=0)  # defaults otherwise
    model_path = work / "ft.bin"
    model.save_model(str(model_path))
    train_seconds = time.perf_counter() - started

    def run(name: str, steps: list) -> dict:
        reader = JsonlReader(str(source.parent), glob_pattern=source.name, compression=None)
        out = work / f"dt-{name}"
        ex = LocalPipelineExecutor(
            [reader, *steps, JsonlWriter(str(out), compression=None)],
            tasks=1,
            workers=1,
            logging_dir=str(work / "logs" / name),
        )
        t = time.perf_counter()
        stats = ex.run()
        seconds = time.perf_counter() - t
        steps_time = {s.name: round(s.time_stats.total, 3) for s in stats.stats if s.time_stats.total}
        n, chars = kept(out)
        return {"seconds": round(seconds, 3), "steps": steps_time, "kept_docs": n, "kept_chars": chars}

    lang = "jpn"  # datatrove's Japanese word tokenizer (spaCy + Sudachi)
    # each filter alone over the whole input: chained, the first drops nearly everything here
    return {
        "read_write_only": run("read", []),
        "gopher_repetition": run("gopher_rep", [GopherRepetitionFilter(language=lang)]),
        "gopher_quality": run("gopher_quality", [GopherQualityFilter(language=lang)]),
        "c4_quality": run("c4", [C4QualityFilter(language=lang)]),
        "gopher_c4_chained": run(
            "chain",
            [GopherRepetitionFilter(language=lang), GopherQualityFilter(language=lang), C4QualityFilter(language=lang)],
        ),
        "fasttext": {
            **run("fasttext", [FastTextClassifierFilter(str(model_path), keep_labels=[("good", 0.5)])]),
            "train_seconds": round(train_seconds, 2),
        },
    }


def datatrove_minhash() -> dict:
    """datatrove's 4-stage MinHash with character 5-grams (its default word tokens do not apply to Japanese)."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter
    from datatrove.utils.text import TextNormConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class CharTokenizer(WordTokenizer):
        def word_tokenize(self, text):
            return [c for c in text if not c.isspace()]

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    off = TextNormConfig(
        lowercase=False,
        norm_whitespace=False,
        remove_punctuation=False,
        norm_unicode_diacritics=False,
        norm_numbers=False,
    )
    mc = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, norm_config=off)
    w = work / "minhash"

    def reader():
        return JsonlReader(str(source.parent), glob_pattern=source.name, compression=None)

    def ex(steps, name, tasks=1):
        return LocalPipelineExecutor(steps, tasks=tasks, workers=1, logging_dir=str(w / "logs" / name))

    stages = [
        ("signature", ex([reader(), MinhashDedupSignature(str(w / "sigs"), config=mc, language=CharTokenizer())], "s")),
        (
            "buckets",
            ex([MinhashDedupBuckets(str(w / "sigs"), str(w / "buckets"), config=mc)], "b", tasks=mc.num_buckets),
        ),
        ("cluster", ex([MinhashDedupCluster(str(w / "buckets"), str(w / "remove"), config=mc)], "c")),
        (
            "filter",
            ex([reader(), MinhashDedupFilter(str(w / "remove")), JsonlWriter(str(w / "kept"), compression=None)], "f"),
        ),
    ]
    out = {}
    t0 = time.perf_counter()
    for name, executor in stages:
        t = time.perf_counter()
        executor.run()
        out[name] = round(time.perf_counter() - t, 3)
    n, chars = kept(w / "kept")
    return {"seconds": round(time.perf_counter() - t0, 3), "steps": out, "kept_docs": n, "kept_chars": chars}


def datatrove_tokenize() -> dict:
    """DocumentTokenizer with a unigram tokenizer (HF tokenizers) trained on the same text sample."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    started = time.perf_counter()
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=cfg["vocab_size"], special_tokens=["<unk>", "<|endoftext|>"], unk_token="<unk>"
    )
    tok.train([cfg["tokenizer_text"]], trainer)
    path = work / "tokenizer.json"
    tok.save(str(path))
    train_seconds = time.perf_counter() - started
    reader = JsonlReader(str(source.parent), glob_pattern=source.name, compression=None)
    ex = LocalPipelineExecutor(
        [
            reader,
            DocumentTokenizer(str(work / "tokens"), str(path), eos_token="<|endoftext|>", shuffle_documents=False),
        ],
        tasks=1,
        workers=1,
        logging_dir=str(work / "logs" / "tokenize"),
    )
    t = time.perf_counter()
    stats = ex.run()
    seconds = time.perf_counter() - t
    tokens = sum(int(s.stats["tokens"].total) for s in stats.stats if "tokens" in s.stats)
    return {
        "seconds": round(seconds, 3),
        "tokens": tokens,
        "train_seconds": round(train_seconds, 2),
        "vocab_size": tok.get_vocab_size(),
    }


def hojichar() -> dict:
    """HojiChar's Japanese document filters (≈ our rules) and its LSH dedup (≈ our dedup)."""
    from hojichar import Compose, Document
    from hojichar.filters import document_filters as df
    from hojichar.filters import tokenization as tok
    from hojichar.filters.deduplication import GenerateDedupLSH, InlineDeduplicator

    # the same list as bench/compare_hojichar.py: text cleaners, then document filters, HojiChar defaults
    filters = Compose(
        [
            df.DocumentNormalizer(),
            tok.SentenceTokenizer(),
            df.HeaderFooterTagsRemover(),
            tok.MergeTokens(),
            df.DocumentLengthFilter(min_doc_len=20, max_doc_len=200_000),
            df.AcceptJapanese(),
            df.DiscardRareKuten(),
            df.DiscardBBSComments(),
            df.DiscardAds(),
            df.DiscardAdultContentJa(),
            df.DiscardDiscriminationContentJa(),
            df.DiscardViolenceContentJa(),
            df.CharRepetitionRatioFilter(),
            df.SingleCharacterRepetitionFilter(),
            df.DiscardTooManyEndingEllipsis(),
            df.DiscardTooShortLines(),
        ]
    )
    t = time.perf_counter()
    results = [filters.apply(Document(d["text"])) for d in docs]
    filter_seconds = time.perf_counter() - t
    kept_docs = [r for r in results if not r.is_rejected]
    dedup = Compose([GenerateDedupLSH(threshold=cfg["threshold"]), InlineDeduplicator()])
    t = time.perf_counter()
    deduped = [dedup.apply(Document(d["text"])) for d in docs]
    dedup_seconds = time.perf_counter() - t
    survivors = [r for r in deduped if not r.is_rejected]
    return {
        "filters": {
            "seconds": round(filter_seconds, 3),
            "kept_docs": len(kept_docs),
            "kept_chars": sum(len(r.text) for r in kept_docs),
        },
        "dedup": {
            "seconds": round(dedup_seconds, 3),
            "kept_docs": len(survivors),
            "kept_chars": sum(len(r.text) for r in survivors),
        },
    }


result = {
    "input_docs": len(docs),
    "input_chars": total_chars,
    "input_mb": round(sum(len(d["text"].encode()) for d in docs) / 1e6, 2),
}
for name, fn in [
    ("datatrove_filters", datatrove_filters),
    ("datatrove_minhash", datatrove_minhash),
    ("datatrove_tokenize", datatrove_tokenize),
    ("hojichar", hojichar),
]:
    print(f"peers: {name} …", file=sys.stderr, flush=True)
    result[name] = fn()
Path(cfg["out"]).write_text(json.dumps(result, indent=2))
