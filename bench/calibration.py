"""This machine's single-core speed now, against a fixed reference, so benchmark runs made on a busy or
slow day can be compared: a shared VM's speed varies from day to day (0.59x to 0.81x of the reference
between 2026-11-24 and 2026-12-02), and every stage slows with it."""

from __future__ import annotations

import json
import time
import unicodedata

# The calibration loop on this project's benchmark machine on 2026-11-24 (bench/results/2026-11-24-vm.md).
REFERENCE_MB_PER_S = 36.4


def calibrate(seconds: float = 1.0) -> float:
    """MB/s of a fixed single-core workload (JSON decode + NFKC of Japanese text) on this machine now."""
    text = "全角ＡＢＣと半角ｶﾀｶﾅ、日本語の文章です。" * 200
    line = json.dumps({"text": text}, ensure_ascii=False)
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        unicodedata.normalize("NFKC", json.loads(line)["text"])
        done += len(line.encode())
    return round(done / 1e6 / (time.perf_counter() - started), 1)
