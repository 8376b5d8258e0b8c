"""Shared fixtures: the bundled sample, ../shared data (skipped when absent), one Ray per session."""

from __future__ import annotations

import json
import os

# Every Ray process a test starts listens on 127.0.0.1 only (read by Ray when it is imported).
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"

from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "cleaning" / "samples" / "ja_web"
SHARED = ROOT.parent / "shared" / "data"
PIPELINE = ROOT / "pipelines" / "ja.yaml"
NORMALIZE_ONLY = ROOT / "tests" / "normalize_only.yaml"
RULES_ONLY = ROOT / "tests" / "rules_only.yaml"


@pytest.fixture
def sample_dir() -> Path:
    assert any(SAMPLE.glob("*.jsonl.gz")), f"bundled sample corpus missing in {SAMPLE}"
    return SAMPLE


@pytest.fixture
def shared_data() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED


@pytest.fixture(scope="session")
def ray_cluster():
    """One embedded 2-CPU Ray for the whole session, bound to loopback, shut down at the end."""
    ray = pytest.importorskip("ray")
    # Ray workers must be able to import the test-only stages in tests/helpers.py.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", logging_level="WARNING")
    yield ray
    ray.shutdown()


def parquet_files(out: Path) -> dict[str, bytes]:
    """Every data file a run wrote (stage shards and rejects), by path relative to OUTPUT."""
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*.parquet"))}


def output_ids(out: Path) -> tuple[Counter[str], Counter[str]]:
    """Ids in the final shards, and ids in all rejects files, as multisets."""
    summary_final = sorted(p for p in out.iterdir() if p.is_dir() and p.name[:2].isdigit())[-1]
    kept = Counter(i for f in (summary_final / "shards").glob("*.parquet") for i in pq.read_table(f)["id"].to_pylist())
    rejected = Counter(i for f in (out / "rejects").rglob("*.parquet") for i in pq.read_table(f)["id"].to_pylist())
    return kept, rejected


def run_pipeline(inputs: list[Path], out: Path, pipeline: Path = PIPELINE, overrides: list[str] | None = None) -> dict:
    """Run a pipeline in-process, quietly; returns summary.json's content."""
    import io

    from rich.console import Console

    from cleaning.pipeline import load_pipeline
    from cleaning.runner import Runner, RunOptions

    opts = RunOptions([str(p) for p in inputs], out, use_ray=False, progress=False)
    return Runner(load_pipeline(pipeline, overrides or []), opts, Console(file=io.StringIO())).run()


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default pipeline over the bundled sample, run once per session, with its balance report."""
    from cleaning.report.build import ReportOptions, build_report

    out = tmp_path_factory.mktemp("sample-run") / "out"
    run_pipeline([SAMPLE], out)
    build_report(ReportOptions(out), lambda fn, items, label: [fn(i) for i in items], log=lambda line: None)
    return out


def genre_model_id(out: Path) -> str:
    """The id of the genre model a run fitted or reused (OUTPUT/genre-model)."""
    return json.loads((out / "genre-model" / "genre-model.json").read_text(encoding="utf-8"))["id"]


def genres_dir(out: Path) -> Path:
    return next(p for p in out.iterdir() if p.name.endswith("-genres"))


@pytest.fixture(scope="session")
def loopback_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Two Ray nodes and an S3 server in a loopback-only network namespace (tests/cluster.py),
    shared by the multi-node tests; skipped without root and `ip netns`."""
    from tests.cluster import two_nodes

    with two_nodes(tmp_path_factory.mktemp("node-b")) as cluster:
        yield cluster
