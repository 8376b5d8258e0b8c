"""Peak memory per unit of work: the reset makes a long-lived worker report each task's own peak."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cleaning.memory import peak_rss_mb, reset_peak
from tests.conftest import NORMALIZE_ONLY, SAMPLE, run_pipeline


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM reset is Linux-only")
def test_reset_forgets_an_earlier_peak() -> None:
    block = bytearray(300 * 1024 * 1024)  # touched: 300 MB resident
    block[::4096] = b"x" * len(block[::4096])
    high = peak_rss_mb()
    del block
    reset_peak()
    assert high - peak_rss_mb() > 250


def test_run_stats_record_peak_memory(tmp_path: Path) -> None:
    summary = run_pipeline([SAMPLE], tmp_path / "out", NORMALIZE_ONLY)
    for stage in summary["stages"]:
        assert 10 < stage["peak_rss_mb"] < 4000
    assert summary["stages"][-1]["driver_peak_rss_mb"] > 10
