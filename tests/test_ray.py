"""Ray runs: same bytes as in-process runs, survive a killed worker, resume after a killed driver."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
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
    pipeline = write_pipeline(tmp_path / "p.yaml", [{"stage": "normalize"}], shard_mb=0.02)
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
