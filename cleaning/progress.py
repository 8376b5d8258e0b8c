"""What a person watching a run sees: live bars on a terminal, timed lines in a log file.

A log (stderr not a terminal) cannot show a bar, so `Ticker` writes a line at least every
`every` seconds while anything runs: the open bars with counts, rate and ETA, or the long step in
progress ("genres: corpus-wide step, 0:02:30") when no bar is open. A terminal gets rich's bars,
and the same "still running" line during long steps that have no bar.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.text import Text


def amount(value: float, unit: str) -> str:
    """12345678 bytes -> '12.3 MB'; other units with thousands separators."""
    if unit == "bytes":
        return f"{value / 1e6:,.1f} MB"
    return f"{value:,.0f} {unit}"


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class _Bar:
    description: str
    total: float
    unit: str
    started: float = field(default_factory=time.monotonic)
    done: float = 0.0

    def status(self, now: float) -> str:
        elapsed = now - self.started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        pct = 100 * self.done / self.total if self.total else 100.0
        eta = clock((self.total - self.done) / rate) if rate > 0 else "unknown"
        speed = amount(rate, self.unit) + "/s"
        done = amount(self.done, self.unit).rsplit(" ", 1)[0]
        return (
            f"{self.description}: {done} of {amount(self.total, self.unit)} ({pct:.0f}%), "
            f"{clock(elapsed)} elapsed, {speed}, ETA {eta}"
        )


class Ticker:
    """Prints progress lines at least every `every` seconds (from a background thread) while a
    step or bar is open. `bars` says whether bars are reported here (logs) or drawn by rich."""

    def __init__(self, console: Console, every: float, bars: bool) -> None:
        self.console = console
        self.every = every
        self.report_bars = bars
        self._lock = threading.Lock()
        self._bars: dict[int, _Bar] = {}
        self._steps: list[tuple[str, float]] = []
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_started = time.monotonic()
        self.where = ""  # e.g. "stage 3 of 9": where the run is, added to progress lines
        self._last_line = ""  # what the step said last ("training embeddings: …"), repeated when it goes quiet

    def start(self) -> None:
        self._run_started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="progress-ticker", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def print(self, line: str, **kwargs: Any) -> None:
        """Any line of the run's output: it resets the clock for the next progress line."""
        with self._lock:
            self._last = time.monotonic()
            self._last_line = line
        self.console.print(line, **kwargs)

    @contextmanager
    def step(self, description: str) -> Iterator[None]:
        """A long piece of work with no bar of its own (a corpus-wide step, a model training)."""
        entry = (description, time.monotonic())
        with self._lock:
            self._steps.append(entry)
        try:
            yield
        finally:
            with self._lock:
                self._steps.remove(entry)

    def open_bar(self, description: str, total: float, unit: str) -> int:
        bar = _Bar(description, total, unit)
        with self._lock:
            self._bars[id(bar)] = bar
        return id(bar)

    def advance(self, bar: int, n: float) -> None:
        with self._lock:
            self._bars[bar].done += n

    def close_bar(self, bar: int) -> None:
        with self._lock:
            closed = self._bars.pop(bar)
        if self.report_bars:
            now = time.monotonic()
            rate = closed.done / max(now - closed.started, 1e-9)
            self.print(
                f"{closed.description}: {amount(closed.done, closed.unit)} in {clock(now - closed.started)} "
                f"({amount(rate, closed.unit)}/s)",
                highlight=False,
            )

    def _loop(self) -> None:
        tick = min(1.0, self.every / 4)
        while not self._stop.wait(tick):
            now = time.monotonic()
            with self._lock:
                if now - self._last + tick <= self.every:  # the next tick would still be in time
                    continue
                lines = [b.status(now) for b in self._bars.values()] if self.report_bars else []
                if not self._bars and self._steps:
                    description, since = self._steps[-1]
                    stage, said = self._last_line.partition(": ")[::2]
                    last = f"; last: {said}" if said and description.startswith(stage + ": ") else ""
                    lines = [f"{description}: still running, {clock(now - since)} elapsed{last}"]
                if not lines:
                    continue
                if self.where:  # no whole-run ETA: later stages' cost is unknown until they run
                    lines = [f"{line} · {self.where}, run {clock(now - self._run_started)}" for line in lines]
                self._last = now
            for line in lines:
                self.console.print(escape(line), highlight=False)


class _Amount(ProgressColumn):
    """'12.3/45.6 MB' or '1,234/5,678 docs'."""

    def render(self, task: Task) -> Text:
        unit = task.fields.get("unit", "")
        if unit == "bytes":
            return Text(f"{task.completed / 1e6:,.1f}/{(task.total or 0) / 1e6:,.1f} MB")
        return Text(f"{task.completed:,.0f}/{task.total or 0:,.0f} {unit}")


class Bars:
    """The bars of one part of a run: rich bars on a terminal, `Ticker` lines in a log.

    Used as `with Bars(...) as bars: bar = bars.add_task(label, total=n, unit="docs"); bars.advance(bar, k)`.
    """

    def __init__(self, ticker: Ticker, enabled: bool) -> None:
        self.ticker = ticker
        self.console = ticker.console
        self._rich: Progress | None = None
        if enabled and not ticker.report_bars:
            self._rich = Progress(
                TextColumn("[bold]{task.description:<24}"),
                BarColumn(),
                _Amount(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=ticker.console,
                transient=False,
            )
        self._open: dict[int, int] = {}  # ticker bar -> rich task

    def __enter__(self) -> Bars:
        if self._rich is not None:
            self._rich.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in list(self._open):
            self.ticker.close_bar(bar)
        self._open.clear()
        if self._rich is not None:
            self._rich.__exit__(*exc)  # type: ignore[arg-type]

    def add_task(self, description: str, total: float, unit: str) -> int:
        bar = self.ticker.open_bar(description, total, unit)
        self._open[bar] = self._rich.add_task(description, total=total, unit=unit) if self._rich else -1
        return bar

    def advance(self, bar: int, n: float = 1) -> None:
        self.ticker.advance(bar, n)
        if self._rich is not None:
            self._rich.advance(self._open[bar], n)

    def print(self, line: str, **kwargs: Any) -> None:
        """A line above the bars (a warning)."""
        if self._rich is not None:
            self._rich.console.print(line, **kwargs)
        else:
            self.ticker.print(line, **kwargs)
