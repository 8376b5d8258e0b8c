"""The tokenize stage: tokenizer training, Megatron-readable parts, mixture files, extras, resume."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from cleaning.errors import CleaningError
from cleaning.pipeline import load_pipeline
from cleaning.tokenize.indexed import read_indexed
from cleaning.tokenize.sample import SampleJob, cluster_docs, cluster_rates, write_sample
from cleaning.tokenize.split import heldout_rates, split_of
from cleaning.tokenize.tokenizer import Tokenizer, TokenizerParams, train_tokenizer
from tests.conftest import SAMPLE, genre_model_id, run_pipeline

SMALL = """
input: {{shard_mb: 0.05}}
stages:
  - normalize
  - stage: genres
    k: 6
    method: lsa  # trains in a second; the token files do not depend on how clusters were found
    train_mb: 1
{balance}
  - stage: tokenize
    vocab_size: 3000
    group_by: {group_by}
    part_mb: {part_mb}
{extra}
"""


def small_pipeline(tmp_path: Path, group_by: str = "cluster", part_mb: float = 0.01, **kw: str) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(
        SMALL.format(group_by=group_by, part_mb=part_mb, balance=kw.get("balance", ""), extra=kw.get("extra", ""))
    )
    return path


def final_docs(out: Path) -> list[dict]:
    final = Path(json.loads((out / "summary.json").read_text())["final_shards"])
    columns = ["id", "text", "tokens", "group", "split", "n_tokens"]
    rows = [
        r
        for f in sorted(final.glob("*.parquet"))
        for r in pq.read_table(f)
        .select(columns + (["repeat"] if "repeat" in pq.ParquetFile(f).schema_arrow.names else []))
        .to_pylist()
    ]
    return rows


def parts_of(out: Path) -> list[Path]:
    return sorted(p.with_suffix("") for p in (out / "tokens").glob("*/part-*.idx"))


# -- the tokenizer --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_texts() -> list[str]:
    import gzip

    return [json.loads(line)["text"] for f in sorted(SAMPLE.glob("*.jsonl.gz")) for line in gzip.open(f, "rt")]


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory: pytest.TempPathFactory, sample_texts: list[str]) -> Tokenizer:
    folder = tmp_path_factory.mktemp("tok")
    text = folder / "train.txt"
    text.write_text("\n".join(line for t in sample_texts for line in t.split("\n") if line.strip()) + "\n")
    return Tokenizer(train_tokenizer(text, folder / "t.model", TokenizerParams(vocab_size=2000), threads=1))


def test_trained_tokenizer_round_trips_every_text_and_ends_with_eod(
    tokenizer: Tokenizer, sample_texts: list[str]
) -> None:
    texts = [*sample_texts, "全角ＡＢＣと\u3000全角空白、絵文字🙂と改行\n\n二行目 ", "", "𠮷野家の𩸽"]
    encoded = tokenizer.encode(texts)
    assert tokenizer.info.eod_piece == "<|endoftext|>" and tokenizer.info.dtype == "uint16"
    assert all(ids[-1] == tokenizer.eod_id and tokenizer.eod_id not in ids[:-1] for ids in encoded)
    assert [tokenizer.decode(ids) for ids in encoded] == texts  # identity normaliser, byte fallback: exact
    assert tokenizer.sp.piece_to_id("\n") != tokenizer.sp.unk_id()  # newline is a piece, not bytes
    assert len(tokenizer.info.sha256) == 64


def test_existing_model_without_endoftext_uses_its_eos(tmp_path: Path, sample_texts: list[str]) -> None:
    import sentencepiece as spm

    text = tmp_path / "t.txt"
    text.write_text("\n".join(sample_texts[:100]))
    spm.SentencePieceTrainer.train(
        input=str(text), model_prefix=str(tmp_path / "plain"), vocab_size=1500, character_coverage=0.98, minloglevel=2
    )
    tok = Tokenizer(tmp_path / "plain.model")
    assert (tok.info.eod_piece, tok.eod_id) == ("</s>", tok.sp.eos_id())
    with pytest.raises(CleaningError, match="no end-of-document piece"):
        Tokenizer(tmp_path / "plain.model", eod="<eod>")
    with pytest.raises(CleaningError, match="not a sentencepiece model"):
        (tmp_path / "bad.model").write_text("nope")
        Tokenizer(tmp_path / "bad.model")


def test_cluster_rates_give_every_cluster_the_same_budget() -> None:
    sizes = Counter({0: 100, 1: 1_000, 2: 5_000, 3: 0})
    rates = cluster_rates(sizes, 900)
    assert rates == {0: 1.0, 1: 0.4, 2: 0.08, 3: 1.0}
    assert sum(rates[c] * s for c, s in sizes.items()) == pytest.approx(900)
    assert cluster_rates(sizes, 1e9) == {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0}


def test_training_sample_is_spread_over_clusters(tmp_path: Path) -> None:
    sizes = {0: 2000, 1: 200, 2: 20}  # documents per cluster: one genre dominates the corpus
    rows = [
        {"id": f"c{c}-{i}", "text": f"cluster {c} document {i} " * 20, "cluster": c}
        for c, n in sizes.items()
        for i in range(n)
    ]
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.Table.from_pylist(rows), shard)
    counts = cluster_docs(shard)
    assert counts == Counter(sizes)
    job = SampleJob(shard, tmp_path / "out.txt", cluster_rates(counts, 60))  # 60 documents in all
    write_sample(job)
    got = Counter(int(line.split()[1]) for line in job.out.read_text().splitlines())
    assert got[2] == 20  # the small cluster gives everything it has
    assert 0.5 < got[0] / got[1] < 2  # the large ones contribute alike, not 10:1 as in the corpus
    assert got[0] + got[1] + got[2] < 100
    no_clusters = tmp_path / "n.parquet"
    pq.write_table(pa.Table.from_pylist([{"id": "a", "text": "x"}]), no_clusters)
    assert cluster_docs(no_clusters) == Counter({-1: 1})


def test_split_is_by_id_and_small_corpora_get_heldout_documents() -> None:
    assert {split_of("doc-7", 0.3, 0.3) for _ in range(3)} == {split_of("doc-7", 0.3, 0.3)}
    splits = Counter(split_of(f"d{i}", 0.1, 0.05) for i in range(20_000))
    assert abs(splits["valid"] / 20_000 - 0.1) < 0.01 and abs(splits["test"] / 20_000 - 0.05) < 0.01
    assert heldout_rates(200, 0.001, 0.001, 10) == (0.05, 0.05)
    assert heldout_rates(10_000_000, 0.001, 0.0, 10) == (0.001, 0.0)
    assert heldout_rates(20, 0.001, 0.001, 10) == (0.1, 0.1)  # never more than a tenth


# -- the stage in a pipeline ------------------------------------------------------------


def test_default_pipeline_output_reads_back_with_megatron_core(sample_run: Path) -> None:
    """The compatibility test: megatron-core's own IndexedDataset reads every part."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    docs = final_docs(sample_run)
    by_tokens = {tuple(d["tokens"]): d for d in docs}
    tokenizer = Tokenizer(sample_run / "tokens" / "tokenizer.model")
    manifest = json.loads((sample_run / "tokens" / "manifest.json").read_text())
    seen: Counter[str] = Counter()
    for prefix in parts_of(sample_run):
        dataset = IndexedDataset(str(prefix))
        meta = json.loads(prefix.with_suffix(".json").read_text())
        assert meta["tokenizer_sha256"] == tokenizer.info.sha256 == manifest["tokenizer_sha256"]
        assert len(dataset) == meta["documents"] and dataset.index.dtype == np.uint16
        for i in range(len(dataset)):
            ids = dataset[i]
            doc = by_tokens[tuple(int(x) for x in ids)]  # every document's ids, exactly
            assert ids[-1] == tokenizer.eod_id
            assert tokenizer.decode(ids) == doc["text"]
            assert prefix.parent.name == (doc["group"] if doc["split"] == "train" else doc["split"])
            seen[doc["id"]] += 1
    assert seen == Counter(d["id"] for d in docs)  # all weights are 1: each document exactly once
    assert manifest["documents"] == len(docs) and manifest["tokens"] == sum(len(d["tokens"]) for d in docs)
    assert {d["split"] for d in docs} == {"train", "valid", "test"}


def test_mixture_and_neox_config_match_the_parts(sample_run: Path) -> None:
    tokens = sample_run / "tokens"
    neox = yaml.safe_load((tokens / "neox_data.yml").read_text())
    mixture = yaml.safe_load((tokens / "mixture.yaml").read_text())
    manifest = json.loads((tokens / "manifest.json").read_text())
    train = [p for p in manifest["parts"] if p["split"] == "train"]
    assert neox["train_data_paths"] == [str(tokens / p["path"]) for p in train]
    total = sum(p["tokens"] for p in train)
    assert neox["train_data_weights"] == pytest.approx([p["tokens"] / total for p in train])
    assert all(Path(p + ".bin").is_file() and Path(p + ".idx").is_file() for p in neox["train_data_paths"])
    assert neox["valid_data_paths"] == [str(tokens / "valid" / "part-00000")]
    assert neox["vocab_file"] == str(tokens / "tokenizer.model") and neox["tokenizer_type"] == "SPMTokenizer"
    assert sum(g["share"] for g in mixture["train"]) == pytest.approx(1, abs=1e-5)
    assert mixture["weights_from"].startswith("balance")
    assert sum(g["tokens"] for g in mixture["train"]) == manifest["tokens_by_split"]["train"]
    chars = sum(len(d["text"]) for d in final_docs(sample_run))
    text_tokens = sum(d["n_tokens"] for d in final_docs(sample_run))
    assert manifest["chars_per_token"] == pytest.approx(chars / text_tokens, rel=1e-3)
    report = json.loads((sample_run / "report" / "report.json").read_text())
    assert report["chars_per_token"] == manifest["chars_per_token"]  # the report uses real counts


def test_parts_respect_the_size_limit_and_resume_without_rewriting(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline = small_pipeline(tmp_path, part_mb=0.01)  # 5,000 uint16 tokens per part
    summary = run_pipeline([SAMPLE], out, pipeline)
    parts = parts_of(out)
    sizes = {p: read_indexed(p) for p in parts}
    assert len(parts) > 20
    for docs in sizes.values():  # full parts, except a single document longer than a part
        assert sum(len(d) for d in docs) <= 5_000 or len(docs) == 1
    assert sum(len(d) for docs in sizes.values() for d in docs) == summary["stages"][-1]["counters"]["tokens"]
    stamps = {p: p.with_suffix(".bin").stat().st_mtime_ns for p in parts}
    victim = parts[3]
    victim.with_suffix(".idx").unlink()  # as if killed while writing that part
    summary = run_pipeline([SAMPLE], out, pipeline)
    assert summary["stages"][-1]["fresh_bytes"] == 0  # no shard was encoded again
    assert parts_of(out) == parts
    rewritten = [p for p in parts if p.with_suffix(".bin").stat().st_mtime_ns != stamps[p]]
    assert rewritten == [victim]
    assert [d.tolist() for d in read_indexed(victim)] == [d.tolist() for d in sizes[victim]]


def test_extra_corpora_are_mixed_in_with_their_weight_and_bad_records_quarantined(tmp_path: Path) -> None:
    extra = tmp_path / "en.jsonl"
    lines = [json.dumps({"id": f"en{i}", "text": f"English line {i}. " * 10}) for i in range(40)]
    extra.write_text("\n".join([*lines, "{not json", json.dumps({"id": "x", "text": ""})]) + "\n")
    spec = f"    extra: [{{name: en, paths: ['{extra}'], weight: 0.25}}]"
    out = tmp_path / "out"
    run_pipeline([SAMPLE], out, small_pipeline(tmp_path, group_by="none", part_mb=100, extra=spec))
    tokens = out / "tokens"
    mixture = {g["group"]: g for g in yaml.safe_load((tokens / "mixture.yaml").read_text())["train"]}
    assert set(mixture) == {"ja", "en"} and mixture["en"]["weight"] == 0.25
    ja, en = mixture["ja"]["tokens"], mixture["en"]["tokens"]
    assert mixture["en"]["share"] == pytest.approx(0.25 * en / (0.25 * en + ja), abs=1e-6)
    manifest = json.loads((tokens / "manifest.json").read_text())
    assert len(read_indexed(tokens / "en" / "part-00000")) == mixture["en"]["documents"]
    assert manifest["groups"]["en"]["unique_docs"] == 40  # train, valid and test together
    rejects = pq.read_table(tokens / "_rejects" / "en" / "en.jsonl.parquet").to_pylist()
    assert sorted(r["reject_reason"] for r in rejects) == ["input.broken_json", "input.empty_text"]
    files = manifest["extra_files"]
    assert files[0]["read"] == 42 and files[0]["tokenized"] == 40 and files[0]["rejected"] == 2


def test_balance_repeats_are_written_and_not_weighted_again(tmp_path: Path) -> None:
    weights = tmp_path / "w.yaml"
    weights.write_text("default: 1\n")
    balance = f"  - stage: balance\n    weights: {weights}"
    out = tmp_path / "out"
    run_pipeline([SAMPLE], out, small_pipeline(tmp_path, part_mb=100, balance=balance))  # fits the genre model
    weights.write_text(f"genre_model: {genre_model_id(out)}\nclusters: {{0: 2, 1: 0.5}}\n")
    run_pipeline([SAMPLE], out, small_pipeline(tmp_path, part_mb=100, balance=balance))
    docs = final_docs(out)
    written = Counter(tuple(d.tolist()) for p in parts_of(out) for d in read_indexed(p))
    expected: Counter[tuple[int, ...]] = Counter()
    for d in docs:  # (the sample has exact copies: no dedup stage here)
        expected[tuple(d["tokens"])] += d["repeat"] if d["split"] == "train" else 1
    assert written == expected
    assert any(d["repeat"] == 2 and d["split"] == "train" for d in docs)
    mixture = yaml.safe_load((out / "tokens" / "mixture.yaml").read_text())
    assert {g["weight"] for g in mixture["train"]} == {1.0}


def test_weights_without_balance_go_into_the_mixture(tmp_path: Path) -> None:
    weights = tmp_path / "w.yaml"
    out = tmp_path / "out"
    pipeline = small_pipeline(tmp_path, part_mb=100)
    run_pipeline([SAMPLE], out, pipeline)  # fits the genre model the weights are written for
    weights.write_text(f"genre_model: {genre_model_id(out)}\nclusters: {{0: 3, 1: 0}}\n")
    run_pipeline([SAMPLE], out, pipeline, [f"tokenize.weights={weights}"])
    mixture = {g["group"]: g for g in yaml.safe_load((out / "tokens" / "mixture.yaml").read_text())["train"]}
    neox = yaml.safe_load((out / "tokens" / "neox_data.yml").read_text())
    assert mixture["cluster-00000"]["weight"] == 3 and mixture["cluster-00001"]["share"] == 0
    assert not any("cluster-00001" in p for p in neox["train_data_paths"])  # weight 0: not trained on
    mass = {g: m["tokens"] * m["weight"] for g, m in mixture.items()}
    assert mixture["cluster-00000"]["share"] == pytest.approx(mass["cluster-00000"] / sum(mass.values()), abs=1e-6)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tokenize.group_by=genre"], "group_by must be one of"),
        (["tokenize.model=/nonexistent.model"], "file not found"),
        (["tokenize.name=valid"], "cannot name a corpus"),
        (["tokenize.extra=[{name: en, paths: [/nonexistent/*.jsonl]}]"], "no input files match"),
        (["tokenize.vocab_size=10"], "vocab_size"),
    ],
)
def test_bad_tokenize_options_are_one_clear_line(tmp_path: Path, overrides: list[str], message: str) -> None:
    with pytest.raises(CleaningError, match=message):
        load_pipeline(small_pipeline(tmp_path), overrides)


def test_grouping_by_cluster_without_genres_is_a_clear_error(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text("stages:\n  - normalize\n  - stage: tokenize\n    group_by: cluster\n    vocab_size: 500\n")
    with pytest.raises(CleaningError, match="needs the genres stage"):
        run_pipeline([SAMPLE], tmp_path / "out", pipeline)


def test_rerun_restores_missing_token_files_and_removes_strays(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline = small_pipeline(tmp_path, part_mb=100)
    run_pipeline([SAMPLE], out, pipeline)
    stray = out / "tokens" / "cluster-00099"
    stray.mkdir()
    (stray / "part-00000.bin").write_bytes(b"")
    shutil.rmtree(out / "tokens" / "valid")
    run_pipeline([SAMPLE], out, pipeline)  # products missing: the closing step runs again and tidies up
    assert not stray.exists() and (out / "tokens" / "valid" / "part-00000.idx").is_file()


def test_finish_only_options_rerun_only_the_closing_step(tmp_path: Path) -> None:
    out = tmp_path / "out"
    pipeline = small_pipeline(tmp_path, part_mb=100)
    run_pipeline([SAMPLE], out, pipeline)
    stamps = {p: p.with_suffix(".bin").stat().st_mtime_ns for p in parts_of(out)}
    summary = run_pipeline([SAMPLE], out, pipeline, ["tokenize.data_root=/cluster/ja/tokens"])
    assert summary["stages"][-1]["fresh_bytes"] == 0  # nothing encoded again
    assert {p: p.with_suffix(".bin").stat().st_mtime_ns for p in parts_of(out)} == stamps  # parts kept
    neox = yaml.safe_load((out / "tokens" / "neox_data.yml").read_text())
    assert all(p.startswith("/cluster/ja/tokens/cluster-") for p in neox["train_data_paths"])
    assert neox["vocab_file"] == "/cluster/ja/tokens/tokenizer.model"


def test_weights_twice_is_a_clear_error(tmp_path: Path) -> None:
    weights = tmp_path / "w.yaml"
    weights.write_text("default: 1\n")
    balance = f"  - stage: balance\n    weights: {weights}"
    pipeline = small_pipeline(tmp_path, part_mb=100, balance=balance)
    with pytest.raises(CleaningError, match="balance stage already applied weights"):
        run_pipeline([SAMPLE], tmp_path / "out", pipeline, [f"tokenize.weights={weights}"])
    weights.write_text("clusters: {3: 2}\n")
    with pytest.raises(CleaningError, match="per-cluster weights need tokenize"):
        load_pipeline(small_pipeline(tmp_path, group_by="domain"), [f"tokenize.weights={weights}"])


def test_the_trained_tokenizer_does_not_depend_on_where_it_was_trained(tmp_path: Path) -> None:
    from sentencepiece import sentencepiece_model_pb2

    lines = [f"これは{i}番目の文です。天気は晴れ、気温は{i % 30}度でした。\n" for i in range(3000)]
    models = []
    for where in ("a/deep/folder", "b"):
        sample = tmp_path / where / "sample.txt"
        sample.parent.mkdir(parents=True)
        sample.write_text("".join(lines), encoding="utf-8")
        models.append(train_tokenizer(sample, tmp_path / where / "tokenizer.model", TokenizerParams(vocab_size=300), 1))
    assert models[0].read_bytes() == models[1].read_bytes()
    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(models[0].read_bytes())
    assert list(proto.trainer_spec.input) == ["sample.txt"] and proto.trainer_spec.model_prefix == "tokenizer"
    import sentencepiece as spm

    assert spm.SentencePieceProcessor(model_file=str(models[1])).encode("今日は晴れでした。"), "it still loads and cuts"


def test_a_new_model_at_the_same_path_is_loaded_again(tmp_path: Path, sample_texts: list[str]) -> None:
    """A run in the same process as an earlier one (library use, `--no-ray`) writes its tokenizer
    where the earlier run's was: it must encode with its own, not the cached one."""
    import sentencepiece as spm

    from cleaning.fasttext_input import load_pieces
    from cleaning.tokenize.tokenizer import load_tokenizer

    text = tmp_path / "t.txt"
    model = tmp_path / "m.model"
    encoded = []
    for vocab, texts in ((800, sample_texts[:60]), (1500, sample_texts[60:160])):
        text.write_text("\n".join(texts))
        prefix = str(tmp_path / f"v{vocab}")
        spm.SentencePieceTrainer.train(
            input=str(text), model_prefix=prefix, vocab_size=vocab, character_coverage=0.98, minloglevel=2
        )
        shutil.copyfile(prefix + ".model", model)
        encoded.append((load_tokenizer(str(model)).sp.vocab_size(), load_pieces(str(model)).vocab_size()))
    assert encoded == [(800, 800), (1500, 1500)]
