"""Ray runs: same bytes as in-process runs, survive a killed worker, resume after a killed driver."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from rich.console import Console

from cleaning.pipeline import load_pipeline
from cleaning.runner import Runner, RunOptions
from tests.conftest import ROOT, output_ids, parquet_files
from tests.helpers import write_pipeline
from tests.test_runner import input_ids, make_corpus

pytestmark = pytest.mark.ray


def run(inputs: list[Path], out: Path, pipeline: Path, use_ray: bool) -> dict:
    opts = RunOptions([str(p) for p in inputs], out, workers=2, use_ray=use_ray, progress=False)
    return Runner(load_pipeline(pipeline), opts, Console(file=io.StringIO())).run()


def test_ray_and_in_process_runs_write_identical_bytes(tmp_path: Path, ray_cluster) -> None:
    inputs = make_corpus(tmp_path / "in", files=3, docs=200)
    stages = [{"stage": "normalize"}, {"stage": "tests.helpers:CorpusShare", "min_chars": 30}]
    pipeline = write_pipeline(tmp_path / "p.yaml", stages, shard_mb=0.02)
    run(inputs, tmp_path / "local", pipeline, use_ray=False)
    run(inputs, tmp_path / "ray", pipeline, use_ray=True)
    local, distributed = parquet_files(tmp_path / "local"), parquet_files(tmp_path / "ray")
    assert len(local) > 6
    assert local == distributed


def test_killed_worker_is_replaced_and_output_is_identical(tmp_path: Path, ray_cluster) -> None:
    inputs = make_corpus(tmp_path / "in", files=3, docs=60)
    marker = tmp_path / "crashed"
    crash = {"stage": "tests.helpers:CrashOnce", "crash_id": "f1d7", "marker": str(marker)}
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}, crash])
    run(inputs, tmp_path / "ray", pipeline, use_ray=True)
    assert marker.exists(), "the worker really died mid-stage"
    calm = write_pipeline(tmp_path / "calm.yaml", [{"stage": "normalize"}, {**crash, "crash_id": ""}])
    run(inputs, tmp_path / "ref", calm, use_ray=False)
    assert parquet_files(tmp_path / "ray") == parquet_files(tmp_path / "ref")
    kept, rejected = output_ids(tmp_path / "ray")
    assert kept + rejected == input_ids(inputs)


def test_kill_9_mid_stage_then_resume_is_byte_identical(tmp_path: Path) -> None:
    inputs = make_corpus(tmp_path / "in", files=2, docs=300)
    pipeline = write_pipeline(
        tmp_path / "p.yaml", [{"stage": "normalize"}, {"stage": "tests.helpers:Sleepy", "seconds": 0.4}], shard_mb=0.02
    )
    run(inputs, tmp_path / "ref", pipeline, use_ray=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cleaning", "run", str(pipeline), "--output", str(out), "--no-ray", "--no-progress"]
    cmd += [arg for p in inputs for arg in ("--input", str(p))]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    done = out / "02-sleepy" / "_done"
    deadline = time.monotonic() + 60
    while len(list(done.glob("*.json"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in done.glob("*.json")}
    total = len(list((tmp_path / "ref" / "02-sleepy" / "_done").glob("*.json")))
    assert 2 <= len(finished) < total, "killed in the middle of the stage"
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert {n: t for n, t in ((p.name, p.stat().st_mtime_ns) for p in done.glob("*.json")) if n in finished} == finished
    assert not list(out.rglob("*.tmp")), "no temp files left behind"
    assert parquet_files(out) == parquet_files(tmp_path / "ref")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop_ray_head(proc: subprocess.Popen, temp_dir: Path) -> None:
    """Stop the head this test started, and only it (never `ray stop`, which stops every Ray here)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    for _ in range(20):
        leftovers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and str(temp_dir) in _cmdline(p)]
        if not leftovers:
            return
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
    raise AssertionError(f"Ray processes of {temp_dir} survived: {leftovers}")


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_join_an_existing_cluster_with_address(tmp_path: Path) -> None:
    port = _free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    ray_bin = Path(sys.executable).parent / "ray"
    head = subprocess.Popen(
        [
            str(ray_bin),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--num-cpus=2",
            "--memory=2000000000",
            "--object-store-memory=200000000",
            "--include-dashboard=false",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        inputs = make_corpus(tmp_path / "in", files=2, docs=50)
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "cleaning", "run", str(ROOT / "pipelines" / "ja.yaml"), "--output", str(out)]
        cmd += ["--address", f"127.0.0.1:{port}", "--no-progress", "--input", str(inputs[0].parent)]
        result = None
        for _ in range(30):  # the head takes a few seconds to come up
            result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180, cwd=tmp_path)
            if result.returncode == 0 or "cannot start or join Ray" not in result.stderr:
                break
            time.sleep(1)
        assert result is not None and result.returncode == 0, result.stderr
        kept, rejected = output_ids(out)
        assert kept + rejected == input_ids(inputs)
    finally:
        _stop_ray_head(head, temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_default_pipeline_with_corpus_wide_rules_is_identical_under_ray(
    tmp_path: Path, ray_cluster, sample_dir
) -> None:
    """The rules stage's site-level count is a map-reduce over Ray actors: same bytes as in-process."""
    pipeline = tmp_path / "ja.yaml"
    pipeline.write_text((ROOT / "pipelines" / "ja.yaml").read_text().replace("shard_mb: 128", "shard_mb: 0.3"))
    run([sample_dir], tmp_path / "local", pipeline, use_ray=False)
    summary = run([sample_dir], tmp_path / "ray", pipeline, use_ray=True)
    assert summary["stages"][0]["shards"] >= 6
    assert summary["stages"][2]["counters"]["lines_removed.site.repeated"] > 0
    assert parquet_files(tmp_path / "local") == parquet_files(tmp_path / "ray")


def test_two_node_cluster_gives_the_single_node_bytes(tmp_path: Path, sample_dir: Path, loopback_cluster) -> None:
    """Head + a second node (1 CPU each, so the two workers land on different nodes), joined with
    --address: the default pipeline, corpus-wide steps included, writes the same bytes as in-process."""
    pipeline = tmp_path / "ja.yaml"
    pipeline.write_text((ROOT / "pipelines" / "ja.yaml").read_text().replace("shard_mb: 128", "shard_mb: 0.3"))
    run([sample_dir], tmp_path / "local", pipeline, use_ray=False)
    out = tmp_path / "cluster"
    cmd = [sys.executable, "-m", "cleaning", "run", str(pipeline), "--output", str(out), "--no-progress"]
    cmd += ["--address", loopback_cluster.address, "--input", str(sample_dir)]
    result = loopback_cluster.run(cmd, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "run.json").read_text())["workers"] == 2
    assert parquet_files(out) == parquet_files(tmp_path / "local")
