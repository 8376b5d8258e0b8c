"""What a person sees of a run: progress lines in a log, Ctrl-C, a rerun with nothing to do, the lock."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from cleaning.childprocess import ChildFailed, call
from cleaning.errors import CleaningError
from cleaning.outputlock import OutputLock
from cleaning.progress import Ticker
from tests.conftest import NORMALIZE_ONLY, ROOT
from tests.helpers import write_pipeline

PROGRESS_LINE = re.compile(
    r"^sleepy: [\d,]+ of [\d,]+ docs \(\d+%\), \d:\d\d:\d\d elapsed, [\d,]+ docs/s, "
    r"ETA (\d:\d\d:\d\d|unknown) · stage 2 of 2, run \d:\d\d:\d\d$"
)


def corpus(folder: Path, files: int = 3, docs: int = 40) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        records = [{"id": f"{f}-{i}", "text": f"これは{f}番目の文書{i}です。"} for i in range(docs)]
        lines = [json.dumps(r, ensure_ascii=False) for r in records]
        (folder / f"part{f}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def start(*args: str, stderr: Path) -> subprocess.Popen[bytes]:
    """`cleaning ARGS` with stderr to a file (a log, not a terminal); test stages importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with open(stderr, "wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "cleaning", *args], stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT, env=env
        )


def sleepy_pipeline(tmp_path: Path, seconds: float) -> Path:
    return write_pipeline(tmp_path / "sleepy.yaml", [{"stage": "tests.helpers:Sleepy", "seconds": seconds}])


def wait_for(path: Path, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file() or text not in path.read_text(encoding="utf-8", errors="replace"):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {path}"
        time.sleep(0.1)


def test_a_log_gets_progress_lines_with_rate_and_eta(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    pipeline = sleepy_pipeline(tmp_path, 0.8)
    proc = start(
        "run", str(pipeline), "--input", str(corpus(tmp_path / "in")), "--output", str(tmp_path / "out"),
        "--no-ray", "--log-every", "0.3", stderr=log,
    )  # fmt: skip
    assert proc.wait(timeout=120) == 0, log.read_text()
    lines = log.read_text(encoding="utf-8").splitlines()
    progress = [line for line in lines if PROGRESS_LINE.match(line)]
    assert len(progress) >= 3, lines  # 2.4 s of sleepy work, a line every 0.3 s at most
    assert any(re.search(r"ETA 0:00:0\d ·", line) for line in progress), "an ETA once a shard is done"
    assert any(re.match(r"^sleepy: 120 docs in 0:00:0\d \([\d,]+ docs/s\)$", line) for line in lines)
    assert "Traceback" not in log.read_text()


def test_a_long_step_without_a_bar_says_it_is_still_running() -> None:
    buffer = io.StringIO()
    ticker = Ticker(Console(file=buffer, width=200), every=0.2, bars=True)
    ticker.start()
    with ticker.step("genres: corpus-wide step"):
        time.sleep(0.9)
        ticker.print("genres: training embeddings: 10 docs")
        time.sleep(0.9)
    time.sleep(0.5)  # nothing is open now: no more lines
    ticker.close()
    lines = buffer.getvalue().splitlines()
    said = lines.index("genres: training embeddings: 10 docs")
    assert said >= 2 and len(lines) - said >= 3, lines
    assert all(re.match(r"^genres: corpus-wide step: still running, 0:00:0\d elapsed$", line) for line in lines[:said])
    last = r"^genres: corpus-wide step: still running, 0:00:0\d elapsed; last: training embeddings: 10 docs$"
    assert all(re.match(last, line) for line in lines[said + 1 :]), lines


def test_ctrl_c_stops_a_run_with_a_message_and_the_rerun_resumes(tmp_path: Path) -> None:
    log, out, inputs = tmp_path / "run.log", tmp_path / "out", corpus(tmp_path / "in")
    args = ["run", str(sleepy_pipeline(tmp_path, 3)), "--input", str(inputs), "--output", str(out), "--no-ray"]
    proc = start(*args, stderr=log)
    wait_for(log, "ingest: ")
    time.sleep(1)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    text = log.read_text(encoding="utf-8")
    assert text.rstrip().endswith("interrupted; finished shards are kept: rerun the same command to resume"), text
    assert "Traceback" not in text
    assert not (out / "summary.json").exists()
    rerun = start(*args[:2], "--input", str(inputs), "--output", str(out), "--no-ray", stderr=log)
    rerun.wait(timeout=120)  # (sleepy takes 3 s a shard)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["conservation"]["records_in"] == summary["conservation"]["kept"] == 120
    assert not summary["stages"][0]["ran"], "ingest had finished before Ctrl-C and was not redone"


def test_ctrl_c_during_a_native_call_in_a_child_kills_the_child_at_once(tmp_path: Path) -> None:
    """fastText and sentencepiece training run through `childprocess.call`; the parent waits
    interruptibly, so Ctrl-C is not held up until the training returns."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\nfrom cleaning.childprocess import call\n"
        "try:\n    call('time:sleep', 120, what='sleeping')\n"
        "except KeyboardInterrupt:\n    print('interrupted', flush=True)\n    sys.exit(130)\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 30
    while not (children.is_file() and children.read_text().split()):
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    child = int(children.read_text().split()[0])
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and stdout.strip() == "interrupted"
    assert time.monotonic() - started < 30, "the parent waited for the 120 s child"
    assert not Path(f"/proc/{child}").exists() or "zombie" in Path(f"/proc/{child}/status").read_text()


def test_errors_in_the_child_come_back_as_what_they_were(tmp_path: Path) -> None:
    with pytest.raises(CleaningError, match=r"^unknown representation 'nope'"):
        call("cleaning.fasttext_input:tokens", "テキスト", "nope", what="tokens")
    with pytest.raises(OSError, match="No such file") as info:
        call("os:remove", str(tmp_path / "missing"), what="remove")
    assert info.value.filename == str(tmp_path / "missing")
    with pytest.raises(ChildFailed, match=r"^parsing failed: ValueError: invalid literal"):
        call("builtins:int", "x", what="parsing")


def test_a_rerun_of_a_finished_run_has_nothing_to_do_and_starts_no_ray(tmp_path: Path) -> None:
    log, out, inputs = tmp_path / "run.log", tmp_path / "out", corpus(tmp_path / "in")
    first = start("run", str(NORMALIZE_ONLY), "--input", str(inputs), "--output", str(out), "--no-ray", stderr=log)
    assert first.wait(timeout=120) == 0
    before = json.loads((out / "summary.json").read_text())
    # Ray at an address where nothing listens: the rerun succeeds only if it never starts Ray
    rerun = start(
        "run", str(NORMALIZE_ONLY), "--input", str(inputs), "--output", str(out), "--address", "127.0.0.1:9",
        stderr=log,
    )  # fmt: skip
    assert rerun.wait(timeout=120) == 0, log.read_text()
    assert "nothing to do: every stage of this run was finished earlier" in log.read_text()
    after = json.loads((out / "summary.json").read_text())
    assert after["wall_seconds"] == before["wall_seconds"]
    assert [s["wall_seconds"] for s in after["stages"]] == [s["wall_seconds"] for s in before["stages"]]


def test_a_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path: Path) -> None:
    out, inputs = tmp_path / "out", corpus(tmp_path / "in")
    pipeline = sleepy_pipeline(tmp_path, 2)
    args = ["run", str(pipeline), "--input", str(inputs), "--output", str(out), "--no-ray"]
    first = start(*args, stderr=tmp_path / "1")
    wait_for(out / ".lock", "pid")
    second = start(*args, stderr=tmp_path / "2")
    assert second.wait(timeout=60) == 1
    message = (tmp_path / "2").read_text().strip()
    assert message.startswith(f"error: output {out} is in use by another run (pid {first.pid} on "), message
    assert "\n" not in message
    assert first.wait(timeout=120) == 0, "the first run is not disturbed"
    assert (out / "summary.json").is_file()


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path: Path) -> None:
    out, inputs = tmp_path / "out", corpus(tmp_path / "in")
    pipeline = sleepy_pipeline(tmp_path, 5)
    first = start("run", str(pipeline), "--input", str(inputs), "--output", str(out), "--no-ray", stderr=tmp_path / "1")
    wait_for(out / ".lock", "pid")
    first.kill()
    first.wait()
    assert "pid" in (out / ".lock").read_text(), "the killed run's note is still there"
    with OutputLock(out):  # the kernel dropped the dead run's lock
        assert str(os.getpid()) in (out / ".lock").read_text()
    assert (out / ".lock").read_text() == "", "released on exit"
