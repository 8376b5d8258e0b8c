"""The runner without Ray: conservation, resume, config changes, the corpus-wide hook, failures."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console

from cleaning.errors import CleaningError, ConservationError
from cleaning.pipeline import load_pipeline
from cleaning.readers import ReaderConfig, read_records
from cleaning.runner import RunFailed, Runner, RunOptions
from cleaning.stages.normalize import Normalize
from tests.conftest import NORMALIZE_ONLY, PIPELINE, output_ids, parquet_files
from tests.helpers import write_pipeline


def run(inputs: list[Path], out: Path, pipeline: Path = NORMALIZE_ONLY, **options: object) -> dict:
    opts = RunOptions([str(p) for p in inputs], out, use_ray=False, progress=False, **options)
    return Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()


def input_ids(inputs: list[Path]) -> Counter[str]:
    """Ids of every record in the inputs, read independently of the runner."""
    ids: Counter[str] = Counter()
    for path in inputs:
        for item in read_records(path, path.name, ReaderConfig()):
            ids[getattr(item, "id", None) or f"{path.name}:{item.line}"] += 1
    return ids


def make_corpus(folder: Path, files: int = 3, docs: int = 40) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        path = folder / f"part-{f}.jsonl.gz"
        lines = [
            json.dumps(
                {"id": f"f{f}d{d}", "text": f"ファイル{f}の文書{d}。\n\n本文です。" * (d % 7 + 1)}, ensure_ascii=False
            )
            for d in range(docs)
        ]
        lines[3] = json.dumps({"id": f"f{f}blank", "text": "\u200b\u3000 "})  # empty after normalize
        path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
        paths.append(path)
    return paths


def test_conservation_on_the_sample_corpus(tmp_path: Path, sample_dir: Path) -> None:
    inputs = sorted(sample_dir.glob("*.jsonl.gz"))
    summary = run([sample_dir], tmp_path / "out", PIPELINE)
    kept, rejected = output_ids(tmp_path / "out")
    assert kept + rejected == input_ids(inputs)
    c = summary["conservation"]
    assert c["records_in"] == sum(input_ids(inputs).values()) == c["kept"] + c["rejected"]
    normalize = next(s for s in summary["stages"] if s["stage"] == "normalize")
    assert normalize["rejected"].get("normalize.empty", 0) > 0, "the sample has blank documents"
    for stage in summary["stages"]:
        assert stage["docs_in"] == stage["kept"] + stage["rejected_total"]
    last = sorted(p for p in (tmp_path / "out").iterdir() if p.name[:2].isdigit())[-1]
    assert json.loads((last / "stats.json").read_text())["kept"] == c["kept"]


def test_rejects_record_stage_and_reason(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in", files=1)
    run(inputs, tmp_path / "out")
    [rejects] = (tmp_path / "out" / "rejects" / "normalize").glob("*.parquet")
    rows = pq.read_table(rejects).to_pylist()
    assert [(r["id"], r["reject_stage"], r["reject_reason"]) for r in rows] == [
        ("f0blank", "normalize", "normalize.empty")
    ]
    assert rows[0]["source"] == "part-0.jsonl.gz" and rows[0]["line"] == 4


def test_large_file_is_split_into_bounded_shards(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in", files=1, docs=400)
    summary = run(inputs, tmp_path / "out", PIPELINE_WITH(tmp_path, shard_mb=0.02))
    shards = sorted((tmp_path / "out" / "00-ingest" / "shards").glob("*.parquet"))
    assert len(shards) > 3
    for shard in shards[:-1]:
        text_bytes = sum(len(t.encode()) for t in pq.read_table(shard)["text"].to_pylist())
        assert 20_000 <= text_bytes < 20_000 + 2_000  # closes right after crossing the bound
    assert summary["stages"][1]["shards"] == len(shards)
    kept, rejected = output_ids(tmp_path / "out")
    assert kept + rejected == input_ids(inputs)


def PIPELINE_WITH(tmp_path: Path, **input_options: object) -> Path:
    return write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}], **input_options)


def test_rerun_skips_finished_shards_and_changes_nothing(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    first = run(inputs, out)
    before = parquet_files(out)
    markers = {p: p.stat().st_mtime_ns for p in out.rglob("_done/*.json")}
    summary = run(inputs, out)
    assert parquet_files(out) == before
    assert {p: p.stat().st_mtime_ns for p in out.rglob("_done/*.json")} == markers, "nothing was redone"
    # the timings stay those of the run that did the work (they used to become 0.0 and "resumed")
    assert first["stages"][0]["fresh_bytes"] > 0 and first["wall_seconds"] > 0
    assert [s["ran"] for s in first["stages"]] == [True, True] and [s["ran"] for s in summary["stages"]] == [False] * 2
    assert [{**s, "ran": 0} for s in summary["stages"]] == [{**s, "ran": 0} for s in first["stages"]]
    assert summary["wall_seconds"] == first["wall_seconds"]


def test_a_partial_rerun_keeps_timings_only_of_stages_it_did_not_redo(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "rules"}])
    first = run(inputs, out, pipeline)
    write_pipeline(pipeline, [{"stage": "normalize"}, {"stage": "rules", "disable": ["menu.block"]}])
    second = run(inputs, out, pipeline)
    same = [{**s, "ran": 0} for s in second["stages"][:2]] == [{**s, "ran": 0} for s in first["stages"][:2]]
    assert same, "ingest and normalize were not redone: their timings are kept"
    assert second["stages"][2]["ran"] and second["stages"][2]["fresh_bytes"] > 0, "rules ran with its new config"
    assert [s["ran"] for s in second["stages"]] == [False, False, True]


def test_changing_a_stage_config_reruns_it(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = tmp_path / "p.yaml"
    write_pipeline(pipeline, [{"stage": "normalize"}])
    before = run(inputs, out, pipeline)
    ingest_markers = {p: p.stat().st_mtime_ns for p in (out / "00-ingest" / "_done").iterdir()}
    first = json.loads((out / "01-normalize" / "manifest.json").read_text())
    write_pipeline(pipeline, [{"stage": "normalize", "unicode_form": "NFC"}])
    summary = run(inputs, out, pipeline)
    second = json.loads((out / "01-normalize" / "manifest.json").read_text())
    assert first["config"]["unicode_form"] == "NFKC" and second["config"]["unicode_form"] == "NFC"
    assert first["config_key"] != second["config_key"]
    assert [s["input_xxh3"] for s in first["shards"]] == [s["input_xxh3"] for s in second["shards"]]
    assert not summary["stages"][0]["ran"] and summary["stages"][1]["ran"]
    assert summary["stages"][0]["wall_seconds"] == before["stages"][0]["wall_seconds"], "ingest's timings kept"
    assert summary["stages"][1]["fresh_bytes"] > 0, "normalize ran again"
    assert {p: p.stat().st_mtime_ns for p in (out / "00-ingest" / "_done").iterdir()} == ingest_markers


def test_changed_input_file_is_reingested_and_removed_file_cleaned(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    run(inputs, out)
    inputs[2].unlink()
    inputs[0].write_bytes(gzip.compress(b'{"id": "new", "text": "\xe6\x96\xb0"}\n'))
    os.utime(inputs[0], ns=(1, 1))
    run(inputs[:2], out)
    kept, rejected = output_ids(out)
    assert kept + rejected == input_ids(inputs[:2])
    assert "new" in kept and not any(k.startswith("f2") for k in kept)


def test_force_redoes_everything(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    run(inputs, tmp_path / "out")
    summary = run(inputs, tmp_path / "out", force=True)
    assert all(s["fresh_bytes"] > 0 for s in summary["stages"])


def test_removed_stage_leaves_no_stale_output(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(
        tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "tests.helpers:Sleepy", "seconds": 0}]
    )
    run(inputs, out, pipeline)
    assert (out / "02-sleepy").is_dir()
    write_pipeline(pipeline, [{"stage": "normalize"}])
    summary = run(inputs, out, pipeline)
    assert not (out / "02-sleepy").exists()
    assert summary["final_shards"].endswith("01-normalize/shards")


def test_corpus_wide_hook_runs_once_and_is_reused(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(
        tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "tests.helpers:CorpusShare", "min_chars": 30}]
    )
    run(inputs, out, pipeline)
    final = [r for f in (out / "02-corpus_share" / "shards").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    normalized = sum(pq.read_metadata(f).num_rows for f in (out / "01-normalize" / "shards").glob("*.parquet"))
    assert {r["corpus_docs"] for r in final} == {normalized}
    assert (out / "rejects" / "corpus_share").is_dir()
    done = out / "02-corpus_share" / "_prepare" / "done.json"
    stamp = done.stat().st_mtime_ns
    run(inputs, out, pipeline)
    assert done.stat().st_mtime_ns == stamp, "the corpus-wide step was reused"


def test_a_stage_that_loses_documents_fails_loudly(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in", files=1)
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "tests.helpers:LoseOne"}])
    with pytest.raises(RunFailed, match="conservation"):
        run(inputs, tmp_path / "out", pipeline)


def test_a_failing_shard_fails_the_run_but_keeps_the_others(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    out = tmp_path / "out"
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "tests.helpers:FailOn", "fail_id": "f1d5"}])
    with pytest.raises(RunFailed, match=r"1 of 3 units failed.*f1d5"):
        run(inputs, out, pipeline)
    assert len(list((out / "01-fail_on" / "_done").glob("*.json"))) == 2
    write_pipeline(pipeline, [{"stage": "tests.helpers:FailOn", "fail_id": "none"}])
    run(inputs, out, pipeline)


def test_output_folder_of_something_else_is_refused(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("x")
    with pytest.raises(CleaningError, match="holds no cleaning run"):
        run(inputs, tmp_path / "out")


def test_conservation_error_is_a_cleaning_error() -> None:
    assert issubclass(ConservationError, CleaningError)


def test_a_worker_builds_each_stage_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    original = Normalize.__init__

    def counting_init(self: Normalize, *args: object) -> None:
        built.append(1)
        original(self, *args)

    monkeypatch.setattr(Normalize, "__init__", counting_init)
    run(make_corpus(tmp_path / "in", files=3), tmp_path / "out")
    assert len(built) == 1, "one normalize object served all three shards"


def test_bundled_sample_is_reproducible_from_its_generator(tmp_path: Path, sample_dir: Path) -> None:
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, str(sample_dir.parent / "make_sample.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    committed = sorted(sample_dir.glob("*.jsonl.gz"))
    assert [p.name for p in committed] == sorted(p.name for p in tmp_path.glob("*.jsonl.gz"))
    for path in committed:  # compare decompressed: gzip bytes may differ between zlib builds
        assert gzip.decompress(path.read_bytes()) == gzip.decompress((tmp_path / path.name).read_bytes())


def test_many_small_files_are_packed_into_few_shards_and_every_record_keeps_its_source(tmp_path: Path) -> None:
    """600 one-line files: 256-512 groups (a task and a shard each), not 600; source and line per record,
    the bad record's reject names its own file, and a rerun resumes every group."""
    from cleaning.inputs import PACK_MIN_GROUPS

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(600):
        record = {"id": f"s{i}", "text": f"小さなファイル{i}の文書です。"} if i != 417 else {"id": "bad"}
        (folder / f"{i:04d}.jsonl").write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    summary = run([folder], out)
    shards = summary["stages"][0]["shards"]
    assert PACK_MIN_GROUPS <= shards <= 2 * PACK_MIN_GROUPS, shards  # groups of ~1/256 of the input
    rows = [r for f in (out / "01-normalize" / "shards").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert len(rows) == 599 and all(r["source"] == f"{int(r['id'][1:]):04d}.jsonl" and r["line"] == 1 for r in rows)
    [bad] = [r for f in (out / "rejects" / "_input").glob("*.parquet") for r in pq.read_table(f).to_pylist()]
    assert (bad["source"], bad["line"], bad["reject_reason"]) == ("0417.jsonl", 1, "input.missing_text")
    markers = {p: p.stat().st_mtime_ns for p in (out / "00-ingest" / "_done").iterdir()}
    assert len(markers) == shards
    run([folder], out)
    assert {p: p.stat().st_mtime_ns for p in (out / "00-ingest" / "_done").iterdir()} == markers


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def test_consumed_shards_are_deleted_and_made_again_only_when_needed(tmp_path: Path) -> None:
    """work.intermediates=delete: a stage's shards go once the next stage has read them; the final
    shards and rejects are the same bytes as a run that keeps everything; a rerun does nothing; a
    changed last stage makes the deleted shards again (from the raw input) and deletes them again."""
    inputs = make_corpus(tmp_path / "in")
    stages = [{"stage": "normalize"}, {"stage": "tests.helpers:CorpusShare", "min_chars": 30}]
    pipeline = write_pipeline(tmp_path / "p.yaml", stages)
    keep, gone = tmp_path / "keep", tmp_path / "gone"
    run(inputs, keep, pipeline)
    with_delete = pipeline.read_text() + "work: {intermediates: delete}\n"
    pipeline_delete = tmp_path / "d.yaml"
    pipeline_delete.write_text(with_delete)
    first = run(inputs, gone, pipeline_delete)
    for folder in ("00-ingest", "01-normalize"):
        assert not list((gone / folder / "shards").glob("*.parquet")), f"{folder}: consumed shards deleted"
        assert (gone / folder / "deleted.json").is_file()
    final = "02-corpus_share/shards"
    assert _files(gone / final) == _files(keep / final) and _files(gone / "rejects") == _files(keep / "rejects")
    markers = {p: p.stat().st_mtime_ns for p in gone.rglob("_done/*.json")}
    again = run(inputs, gone, pipeline_delete)
    assert not any(s["ran"] for s in again["stages"]) and again["wall_seconds"] == first["wall_seconds"]
    assert {p: p.stat().st_mtime_ns for p in gone.rglob("_done/*.json")} == markers, "nothing was redone"

    stages[1]["min_chars"] = 60
    for path, extra in ((pipeline, ""), (pipeline_delete, "work: {intermediates: delete}\n")):
        write_pipeline(path, stages)
        path.write_text(path.read_text() + extra)
    run(inputs, keep, pipeline)
    changed = run(inputs, gone, pipeline_delete)
    assert [s["ran"] for s in changed["stages"]] == [True, True, True], "deleted shards were made again"
    assert _files(gone / final) == _files(keep / final) and _files(gone / "rejects") == _files(keep / "rejects")
    assert not list((gone / "01-normalize" / "shards").glob("*.parquet")), "and deleted again"
    kept, rejected = output_ids(gone)
    assert kept + rejected == input_ids(inputs)

    restored = run(inputs, gone, pipeline)  # keep: every stage's shards are wanted again
    assert _files(gone) == _files(keep) and not list(gone.glob("*/deleted.json"))
    assert restored["conservation"] == changed["conservation"]
