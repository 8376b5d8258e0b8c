"""The genre model as a versioned artifact: cluster ids and weights stay put when upstream stages change."""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cleaning.errors import CleaningError
from cleaning.genres import model as gm
from cleaning.genres.weights import Weights, check_model
from cleaning.stages.genres import GenresConfig
from tests.conftest import PIPELINE, SAMPLE, genre_model_id, genres_dir, run_pipeline


def clusters_by_id(out: Path) -> dict[str, int]:
    table = pq.read_table(genres_dir(out) / "shards", columns=["id", "cluster"])
    return dict(zip(table["id"].to_pylist(), table["cluster"].to_pylist(), strict=True))


def copy_run(sample_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(sample_run, out, ignore=shutil.ignore_patterns("report"))
    return out


def test_an_upstream_change_keeps_cluster_ids_and_the_weights_written_for_them(
    tmp_path: Path, sample_run: Path
) -> None:
    out = copy_run(sample_run, tmp_path)
    model, before = genre_model_id(out), clusters_by_id(out)
    biggest = Counter(before.values()).most_common(1)[0][0]
    weights = tmp_path / "weights.yaml"
    weights.write_text(f"genre_model: {model}\nclusters: {{{biggest}: 0}}\n", encoding="utf-8")
    summary = run_pipeline([SAMPLE], out, PIPELINE, ["quality.threshold=0.1", f"balance.weights={weights}"])
    stages = {s["stage"]: s for s in summary["stages"]}
    assert stages["quality"]["ran"] and stages["genres"]["ran"], "the upstream change reached genres"
    after = clusters_by_id(out)
    assert set(after) != set(before), "the threshold changed which documents reach genres"
    assert genre_model_id(out) == model, "the model was reused, not refitted"
    common = set(before) & set(after)
    assert len(common) >= 25 and all(before[i] == after[i] for i in common), "a document kept its cluster id"
    final = pq.read_table(next(out.glob("*-tokenize")) / "shards", columns=["cluster", "genre_model"])
    assert biggest not in set(final["cluster"].to_pylist()), "the weight 0 applied to the same cluster"
    assert set(final["genre_model"].to_pylist()) == {model}
    assert stages["balance"]["rejected"]["balance.dropped"] == sum(c == biggest for c in after.values())


def test_weights_for_another_model_fail_in_one_line_and_refit_is_on_purpose(tmp_path: Path, sample_run: Path) -> None:
    out = copy_run(sample_run, tmp_path)
    model = genre_model_id(out)
    weights = tmp_path / "weights.yaml"
    weights.write_text(f"genre_model: {model}\nclusters: {{0: 0.5}}\n", encoding="utf-8")
    overrides = ["genres.refit=true", "genres.seed=7", f"balance.weights={weights}"]
    with pytest.raises(CleaningError, match=f"written for genre model {model}, but this run's clusters come from g-"):
        run_pipeline([SAMPLE], out, PIPELINE, overrides)
    assert genre_model_id(out) != model, "refit on purpose published a new model"
    unnamed = tmp_path / "unnamed.yaml"
    unnamed.write_text("clusters: {0: 0.5}\n", encoding="utf-8")
    with pytest.raises(CleaningError, match="sets weights but not the genre model they are for"):
        run_pipeline([SAMPLE], out, PIPELINE, [*overrides, f"balance.weights={unnamed}"])


def test_a_model_folder_is_reused_on_another_corpus(tmp_path: Path, sample_run: Path) -> None:
    source = sample_run / "genre-model"
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"stages:\n  - stage: normalize\n  - stage: genres\n    model: {source}\n", encoding="utf-8")
    part = tmp_path / "part.jsonl"
    with gzip.open(sorted(SAMPLE.glob("*.jsonl.gz"))[-1], "rb") as f:
        part.write_bytes(b"".join(f.readlines()[:40]))
    out = tmp_path / "other"
    run_pipeline([part], out, pipeline)
    assert not (out / "genre-model").exists(), "a given model is used where it is, not copied"
    table = pq.read_table(genres_dir(out) / "shards", columns=["genre_model", "cluster"])
    assert set(table["genre_model"].to_pylist()) == {genre_model_id(sample_run)}
    assert max(table["cluster"].to_pylist()) < gm.read_card(source)["fitted_on"]["k"]


def test_a_missing_or_edited_model_is_one_clear_line(tmp_path: Path, sample_run: Path) -> None:
    with pytest.raises(CleaningError, match="not a genre model"):
        GenresConfig(model=str(tmp_path))
    copy = tmp_path / "model"
    shutil.copytree(sample_run / "genre-model", copy)
    centroids = copy / gm.CENTROIDS
    centroids.write_bytes(centroids.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CleaningError, match="do not match genre model"):
        gm.copy_model(copy, tmp_path / "artifacts")
    (copy / gm.EMBEDDINGS).unlink()
    with pytest.raises(CleaningError, match=r"is missing embeddings\.bin"):
        GenresConfig(model=str(copy))


def test_identity_weights_need_no_model_and_set_weights_need_theirs() -> None:
    check_model(Weights(), "w.yaml", {"g-1"})
    check_model(Weights(clusters={1: 0.0}, genre_model="g-1"), "w.yaml", {"g-1"})
    with pytest.raises(CleaningError, match="written for genre model g-2"):
        check_model(Weights(clusters={1: 0.0}, genre_model="g-2"), "w.yaml", {"g-1"})


def test_changed_fit_settings_with_a_reused_model_are_refused_not_ignored(tmp_path: Path, sample_run: Path) -> None:
    out = copy_run(sample_run, tmp_path)
    with pytest.raises(CleaningError, match=r"genres: k: 0 → 3 since genre model g-\w+ .* genres\.refit=true"):
        run_pipeline([SAMPLE], out, PIPELINE, ["genres.k=3"])
    run_pipeline([SAMPLE], out, PIPELINE, ["genres.k=3", "genres.refit=true"])
    card = gm.read_card(out / "genre-model")
    assert card["fitted_on"]["k"] == 3 and card["fitted_on"]["settings"]["k"] == 3
