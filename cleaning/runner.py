"""Run a pipeline over input files: ingest, then each stage over every shard, resumable.

Layout of OUTPUT (see README): `00-ingest/`, `01-<stage>/`, … each with `shards/`, `_done/`
(one marker per finished unit of work) and `stats.json`; `rejects/<stage>/`; `run.json`;
`summary.json`. A unit of work is skipped when its marker holds the same key (stage config,
code version, input fingerprint) and its outputs are present, so a rerun after Ctrl-C or
`kill -9` redoes only unfinished shards, and identical inputs give byte-identical outputs.

With `--output s3://…` the run lives in the store and OUTPUT is this machine's copy of it
(`cleaning.runstore`): tasks publish what they write, the driver publishes its own files with
`_write`, and a rerun trusts only what the store holds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape

from cleaning.errors import NO_SPACE, CleaningError
from cleaning.executor import LocalExecutor, RayExecutor, TaskFailed, make_executor
from cleaning.inputs import file_groups, resolve_inputs, source_names
from cleaning.memory import peak_rss_mb, reset_peak
from cleaning.outputlock import OutputLock
from cleaning.pipeline import Pipeline, StageSpec
from cleaning.progress import Bars, Ticker
from cleaning.remote import InputFile, is_url
from cleaning.runstore import CLAIM, SHARDS, RunStore, check_bucket, default_work
from cleaning.shards import TMP_SUFFIX, file_hash, read_json, write_json_atomic
from cleaning.stage import FinishContext, PrepareContext, config_dict, fingerprint, sha256_text
from cleaning.stats import aggregate, check_chain
from cleaning.tasks import INPUT_STAGE, IngestTask, StageTask

INGEST_VERSION = 1
_STAGE_DIR = re.compile(r"^\d\d-[\w.-]+$")
DELETED = "deleted.json"  # in a stage folder: its shards that were deleted once the next stage had read them


class _Regenerate(Exception):
    """A step needs shards that were deleted as consumed: redo the stage that made them."""

    def __init__(self, stage_dir: str) -> None:
        super().__init__(stage_dir)
        self.stage_dir = stage_dir


class RunFailed(CleaningError):
    """Some shards failed; finished ones are kept and a rerun resumes. Exit code 1."""


@dataclass
class RunOptions:
    inputs: list[str]
    output: Path | str  # a folder, or a URL in object storage (s3://bucket/run)
    workers: int | None = None
    use_ray: bool = True
    address: str | None = None
    force: bool = False
    progress: bool = True
    log_every: float = 30.0  # seconds between progress lines at most, in a log (and during long steps)
    work: Path | None = None  # with an object-storage output: this machine's copy of the run


@dataclass
class Unit:
    """A unit of work and what the runner knows about it before running it."""

    task: IngestTask | StageTask
    done_path: Path
    key: str
    docs: int  # for the progress bar


class Runner:
    """Drives one run: plans units of work, skips finished ones, runs the rest, checks counts."""

    def __init__(self, pipeline: Pipeline, options: RunOptions, console: Console | None = None) -> None:
        self.pipeline = pipeline
        self.options = options
        output = str(options.output)
        self.store = RunStore.open(output, options.work or default_work(output)) if is_url(output) else None
        self.out = self.store.local if self.store else Path(output).resolve()
        self._published: dict[Path, tuple[int, int]] = {}  # driver-written files as last published
        self.console = console or Console(stderr=True)
        self.skipped_inputs: list[str] = []  # notes on input files left out, printed once and in summary.json
        self._executor: LocalExecutor | RayExecutor | None = None
        terminal = self.console.is_terminal
        self.ticker = Ticker(self.console, options.log_every, bars=options.progress and not terminal)
        self._fresh = False  # whether the current stage did any work in this run
        self._delete = False  # delete each stage's shards once the next stage has consumed them
        self._regenerate: set[str] = set()  # stage folders whose deleted shards must be made again

    @property
    def executor(self) -> LocalExecutor | RayExecutor:
        """Started on first use: a rerun of a finished run never starts Ray."""
        if self._executor is None:
            self._executor = make_executor(self.options.use_ray, self.options.workers, self.options.address)
        return self._executor

    def run(self) -> dict[str, Any]:
        resolved = resolve_inputs(self.options.inputs)
        inputs, self.skipped_inputs = resolved.files, resolved.skipped
        for note in self.skipped_inputs:
            self.console.print(f"[yellow]input[/yellow]: {escape(note)}", highlight=False, soft_wrap=True)
        if self.store is not None:
            self.console.print(f"output {self.store.url}; this machine's copy: {self.out}", highlight=False)
        try:
            with OutputLock(self.out, before=self._check_output), self._store_lock():
                return self._run(inputs)
        except OSError as exc:  # a write error carries no file name: name the output it filled
            if exc.errno in NO_SPACE and not exc.filename:
                raise OSError(exc.errno, exc.strerror, str(self.out)) from exc
            raise

    def _store_lock(self) -> contextlib.AbstractContextManager[Any]:
        """With the run in S3, a lease in the store: one driver per run, on any machine (other stores:
        no conditional writes through fsspec yet, so no lease)."""
        if self.store is None or not self.store.url.startswith("s3://"):
            return contextlib.nullcontext()
        from cleaning.storelock import StoreLock

        return StoreLock(self.store)

    def _run(self, inputs: list[InputFile]) -> dict[str, Any]:
        self._prepare_output()
        if self.store is not None:
            self._take_from_store()
        previous = self._read_previous()
        self._remove([self.out / "summary.json"])  # a failed run must not show the last one's table
        start = time.perf_counter()
        if self.options.progress:
            self.ticker.start()
        try:
            self._write(self.out / "run.json", self._describe(inputs))
            self._delete = self.pipeline.work.deletes(sum(p.stat().st_size for p in inputs))
            while True:
                try:
                    stages, shards = self._all_stages(inputs, previous)
                    break
                except _Regenerate as need:
                    if need.stage_dir in self._regenerate:
                        missing = f"{need.stage_dir}: deleted shards still missing after redoing them"
                        raise CleaningError(missing) from None
                    self._regenerate.add(need.stage_dir)
                    self.ticker.print(f"{need.stage_dir}: its deleted shards are needed again: redoing them")
            self._write(self.out / "00-ingest" / "stats.json", stages[0])
            if self._executor is not None:  # the real worker count, known once the executor started
                self._write(self.out / "run.json", self._describe(inputs))
        finally:
            self.ticker.close()
            if self._executor is not None:
                self._executor.close()
        check_chain(stages)
        self._remove_stale_stage_dirs()
        wall = time.perf_counter() - start
        if not any(s["ran"] for s in stages):
            wall = previous.get("wall_seconds", wall)
            self.console.print(
                f"nothing to do: every stage of this run was finished earlier ({len(stages)} stages); "
                "the timings below are from the run that did the work"
            )
        return self._summary(stages, shards, wall)

    def _all_stages(
        self, inputs: list[InputFile], previous: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], list[tuple[Path, str, int]]]:
        """Ingest, then every stage in order; with deletion on, each stage's input shards go once it is done."""
        self._fresh = False
        self.ticker.where = f"stage 1 of {len(self.pipeline.stages) + 1}"
        markers, timing = self._ingest(inputs)
        stages = [self._keep_timings(aggregate("ingest", markers, *timing), previous.get("ingest"))]
        self._check_something_was_read(stages[0])
        shards = _outputs(markers, self.out / "00-ingest" / "shards")
        if not self._delete:  # every unit was checked with its shards in place: none is missing now
            self._remove([self.out / "00-ingest" / DELETED])
        for index, spec in enumerate(self.pipeline.stages, 1):
            self._fresh = False
            self.ticker.where = f"stage {index + 1} of {len(self.pipeline.stages) + 1}"
            markers, timing, extra = self._stage(index, spec, shards)
            stats = aggregate(spec.name, markers, *timing)
            stats["peak_rss_mb"] = max(stats["peak_rss_mb"], extra.pop("map_peak_rss_mb"))
            stats.update(extra)
            stages.append(self._keep_timings(stats, previous.get(spec.name)))
            self._write(self._stage_dir(index, spec) / "stats.json", stages[-1])
            if self._delete:
                self._delete_consumed(shards)
            else:
                self._remove([self._stage_dir(index, spec) / DELETED])
            shards = _outputs(markers, self._stage_dir(index, spec) / "shards")
        return stages, shards

    def _gone(self, units: list[Unit]) -> set[str]:
        """Shards of these units' stage deleted as consumed, which count as done (read once per stage)."""
        if not units or not self._delete:
            return set()
        task = units[0].task
        stage_dir = (task.shards_dir if isinstance(task, IngestTask) else task.out_path.parent).parent
        return set() if stage_dir.name in self._regenerate else set(_deleted(stage_dir))

    def _delete_consumed(self, shards: list[tuple[Path, str, int]]) -> None:
        """Delete shards a finished stage read: recorded first (in `deleted.json`), so a run killed
        halfway through deleting still knows they were consumed, not lost."""
        if not shards:
            return
        folder = shards[0][0].parent
        record = folder.parent / DELETED
        names = sorted({p.name for p, _, _ in shards} | set(_deleted(folder.parent)))
        self._write(record, {"shards": names})
        self._remove([path for path, _, _ in shards])

    def _need(self, paths: list[Path], listed: dict[Path, int] | None = None) -> None:
        """Before a step reads shards (all of one stage): if some were deleted as consumed, have their
        stage redo them. `listed`: the store's listing, when the caller has it."""
        missing = next((p for p in paths if not p.is_file()), None)
        if missing is not None and self.store is not None:
            listed = self.store.listing() if listed is None else listed
            missing = next((p for p in paths if not p.is_file() and p not in listed), None)
        if missing is not None and missing.name in _deleted(missing.parent.parent):
            raise _Regenerate(missing.parent.parent.name)

    def _read_previous(self) -> dict[str, Any]:
        """The last finished run's stage stats and wall time, to keep timings of stages not redone."""
        previous: dict[str, Any] = {}
        try:
            summary = read_json(self.out / "summary.json")
        except (OSError, ValueError):
            return previous
        previous["wall_seconds"] = summary.get("wall_seconds", 0.0)
        for stage in summary.get("stages", []):
            previous[stage["stage"]] = stage
        return previous

    def _keep_timings(self, stats: dict[str, Any], before: dict[str, Any] | None) -> dict[str, Any]:
        """A stage that did nothing in this run keeps the timings of the run that did its work
        (counts must match); otherwise `cleaning stats` would show 0.0 s and lose them."""
        stats["ran"] = self._fresh  # false: every part of the stage was finished by an earlier run
        if self._fresh or before is None:
            return stats
        counts = ("docs_in", "kept", "rejected", "counters", "chars_in", "chars_out", "bytes_in", "shards", "ran")
        if any(before.get(k) != stats[k] for k in counts if k != "ran"):
            return stats
        return {**stats, **{k: before[k] for k in before if k not in counts}}

    def _check_something_was_read(self, ingest: dict[str, Any]) -> None:
        """Stop before any stage runs on nothing because the text sits in another field."""
        missing = ingest["rejected"].get("input.missing_text", 0)
        if ingest["kept"] or not missing:
            return
        field = self.pipeline.input.text_field
        if self.store is not None:
            self.store.pull_missing(self.store.listing(self.out / "rejects" / INPUT_STAGE))
        hint = _text_field_hint(self.out / "rejects" / INPUT_STAGE)
        raise RunFailed(
            f"no document was read: all {missing:,} records lack a text field {field!r}"
            + (f"; their string fields: {', '.join(hint)}. Try --set input.text_field={hint[0]}" if hint else "")
        )

    # -- planning and bookkeeping -------------------------------------------------------

    def _check_output(self) -> None:
        """Before the lock file is made: the output must be a folder of ours, or empty, or new."""
        out = self.out
        if self.store is not None:
            check_bucket(self.store)
            listed = self.store.listing()
            if listed and out / "run.json" not in listed:
                raise CleaningError(
                    f"output {self.store.url} is not empty and holds no cleaning run; choose another --output"
                )
            self.store.claim()
            return
        if out.exists() and not out.is_dir():
            raise CleaningError(f"output {out} exists and is not a directory")
        ours = (out / "run.json").is_file()
        if out.is_dir() and any(p.name != OutputLock.NAME for p in out.iterdir()) and not ours:
            raise CleaningError(f"output {out} is not empty and holds no cleaning run; choose another --output")

    def _prepare_output(self) -> None:
        out = self.out
        ours = (out / "run.json").is_file()
        if self.options.force and ours:
            products = {s.cls.products for s in self.pipeline.stages if s.cls.products}
            for child in out.iterdir():
                if _STAGE_DIR.match(child.name) or child.name in ("rejects", "summary.json", *products):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            if self.store is not None:
                tops = (*products, "rejects")
                redo = [
                    p
                    for p in self.store.listing()
                    if (top := p.relative_to(out).parts[0]) in tops or _STAGE_DIR.match(top)
                ]
                self.store.delete([*redo, out / "summary.json"])
        out.mkdir(parents=True, exist_ok=True)

    def _take_from_store(self) -> None:
        """Make this machine's copy agree with the store, the run's truth: drop local files the
        store lacks (unpublished work of a killed run, or of another run), fetch the state files
        (markers, manifests, artifacts, models). Shards, rejects and products are fetched only
        when a step reads them."""
        store = self.store
        assert store is not None
        listed = store.listing()
        for path in _local_files(self.out):
            if listed.get(path) != path.stat().st_size and not _scratch(path.relative_to(self.out).parts):
                path.unlink()
        lazy = {"rejects", *(s.cls.products for s in self.pipeline.stages if s.cls.products)}
        wanted = [
            p
            for p in listed
            if p.relative_to(self.out).parts[0] not in lazy and SHARDS not in p.relative_to(self.out).parts[1:2]
        ]
        store.pull_missing(wanted)
        self._published = _snapshot(self.out)

    def _write(self, path: Path, data: Any) -> None:
        """Write a JSON file of the run; with an object-storage output, publish it after whatever
        else the driver wrote since the last time (artifacts before the marker that vouches for them)."""
        write_json_atomic(path, data)
        if self.store is None:
            return
        now = _snapshot(self.out)
        changed = [p for p, st in now.items() if self._published.get(p) != st and p != path]
        self.store.push([*changed, path])
        self.store.delete(p for p in self._published if p not in now)
        self._published = now

    def _remove(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
            self._published.pop(path, None)
        if self.store is not None:
            self.store.delete(paths)

    def _describe(self, inputs: list[InputFile]) -> dict[str, Any]:
        return {
            **self.pipeline.describe(),
            "inputs": [str(p) for p in inputs],
            "workers": self._executor.workers if self._executor else self.options.workers or os.cpu_count(),
            "ray": self.options.use_ray,
        }

    def _stage_dir(self, index: int, spec: StageSpec) -> Path:
        return self.out / f"{index:02d}-{spec.name}"

    def _ingest(self, inputs: list[InputFile]) -> tuple[list[dict[str, Any]], tuple[float, int]]:
        cfg = self.pipeline.input
        ingest_key = sha256_text(repr((INGEST_VERSION, sorted(config_dict(cfg).items()), self.pipeline.batch_docs)))
        base = self.out / "00-ingest"
        units = []
        shard_bytes = int(cfg.shard_mb * 1_000_000)
        for group in file_groups(inputs, source_names(inputs), shard_bytes):
            sources = [source for _, source, _ in group]
            name = sources[0] if len(group) == 1 else "\n".join(sources)
            prefix = f"{re.sub(r'[^A-Za-z0-9._-]+', '_', sources[0])}-{sha256_text(name)[:8]}"
            key = fingerprint(
                [ingest_key, *(x for _, src, st in group for x in (src, str(st.st_size), str(st.st_mtime_ns)))]
            )
            done = base / "_done" / f"{prefix}.json"
            task = IngestTask(
                files=[(path, source) for path, source, _ in group],
                prefix=prefix,
                shards_dir=base / "shards",
                rejects_path=self.out / "rejects" / INPUT_STAGE / f"{prefix}.parquet",
                done_path=done,
                key=key,
                reader=cfg,
                shard_bytes=shard_bytes,
                batch_docs=self.pipeline.batch_docs,
                store=self.store,
            )
            units.append(Unit(task, done, key, sum(st.st_size for _, _, st in group)))
        markers, timing = self._execute("ingest", units, unit_name="bytes")
        self._clean_dir(base, markers, self.out / "rejects" / INPUT_STAGE)
        files = [
            {
                "files": [{"source": s, "path": str(p)} for p, s in u.task.files],  # type: ignore[union-attr]
                "bytes": u.docs,
                "outputs": m["outputs"],
                "rejects": m["rejects"],
            }
            for u, m in zip(units, markers, strict=True)
        ]
        manifest = {"stage": "ingest", "version": INGEST_VERSION, "config_key": ingest_key, "config": config_dict(cfg)}
        self._write(base / "manifest.json", {**manifest, "groups": files})
        return markers, timing

    def _stage(
        self, index: int, spec: StageSpec, shards: list[tuple[Path, str, int]]
    ) -> tuple[list[dict[str, Any]], tuple[float, int, float], dict[str, Any]]:
        stage_dir = self._stage_dir(index, spec)
        if self._executor is not None:
            self._executor.map_peak_mb = 0.0
        reset_peak()
        started = time.perf_counter()
        artifacts, artifacts_fp = self._prepare_stage(spec, stage_dir, shards)
        prepare_seconds = time.perf_counter() - started
        driver_peak = peak_rss_mb()  # now: in-process shard tasks below reset the peak per task
        units = []
        for path, xxh, rows in shards:
            key = fingerprint([spec.key, xxh, artifacts_fp])
            done = stage_dir / "_done" / f"{path.stem}.json"
            task = StageTask(
                stage_ref=spec.ref,
                config=spec.config,
                artifacts=artifacts,
                in_path=path,
                out_path=stage_dir / "shards" / path.name,
                rejects_path=self.out / "rejects" / spec.name / path.name,
                done_path=done,
                key=key,
                instance_key=fingerprint([spec.key, artifacts_fp]),
                batch_docs=self.pipeline.batch_docs,
                store=self.store,
            )
            units.append(Unit(task, done, key, rows))
        markers, timing = self._execute(spec.name, units, unit_name="docs")
        for marker, (_, _, rows) in zip(markers, shards, strict=True):
            if marker["stats"]["docs_in"] != rows:
                raise CleaningError(f"{spec.name}: shard read {marker['stats']['docs_in']} docs, expected {rows}")
        self._clean_dir(stage_dir, markers, self.out / "rejects" / spec.name)
        manifest = {
            "stage": spec.name,
            "ref": spec.ref,
            "version": spec.cls.version,
            "config_key": spec.key,
            "config": config_dict(spec.config),
            "prepare_fingerprint": artifacts_fp or None,
            "shards": [
                {"input": path.name, "input_xxh3": xxh, "outputs": m["outputs"], "rejects": m["rejects"]}
                for (path, xxh, _), m in zip(shards, markers, strict=True)
            ],
        }
        self._write(stage_dir / "manifest.json", manifest)
        extra: dict[str, Any] = {}
        finish_seconds = 0.0
        if spec.cls.has_finish():
            started = time.perf_counter()
            outputs = _outputs(markers, stage_dir / "shards")
            extra["finish"] = self._finish_stage(spec, stage_dir, artifacts, artifacts_fp, outputs)
            finish_seconds = time.perf_counter() - started
            extra["finish"]["seconds"] = round(finish_seconds, 3)
        # workers' peaks inside corpus-wide/closing steps, and the driver's own (it runs those steps)
        extra["map_peak_rss_mb"] = self._executor.map_peak_mb if self._executor is not None else 0.0
        extra["driver_peak_rss_mb"] = max(driver_peak, peak_rss_mb())
        return markers, (timing[0] + prepare_seconds + finish_seconds, timing[1], prepare_seconds), extra

    def _finish_stage(
        self,
        spec: StageSpec,
        stage_dir: Path,
        artifacts: Path | None,
        artifacts_fp: str,
        outputs: list[tuple[Path, str, int]],
    ) -> dict[str, Any]:
        """Run a stage's closing step, or skip it when its inputs are unchanged and its products exist."""
        workdir = stage_dir / "_finish"
        products = self.out / spec.cls.products
        options = json.dumps(config_dict(spec.config), sort_keys=True, default=str)
        extra = spec.cls.finish_fingerprint(spec.config)
        key = fingerprint([spec.key, artifacts_fp, options, extra, *(x for _, x, _ in outputs)])
        done = workdir / "done.json"
        if done.is_file():
            marker = read_json(done)
            if marker.get("key") == key and self._product_files(products) == marker.get("files"):
                return marker["summary"]
        self._need([p for p, _, _ in outputs])
        self._remove([done])
        if self.store is not None:  # the closing step runs on this machine: bring what it reads here
            self.store.pull_missing([p for p, _, _ in outputs])
        self._fresh = True
        self.ticker.print(f"{spec.name}: closing step over {len(outputs)} shards …")
        ctx = FinishContext(
            [p for p, _, _ in outputs],
            [x for _, x, _ in outputs],
            artifacts,
            products,
            workdir,
            self._mapper(spec.name),
            log=self._logger(spec.name),
            progress=self.options.progress and self.console.is_terminal,
        )
        with self.ticker.step(f"{spec.name}: closing step"):
            summary = spec.cls.finish(spec.config, ctx)
        if self.store is not None:  # products of an earlier attempt that this one did not make again
            local = set(_local_files(products)) if products.is_dir() else set()
            self.store.delete(p for p in self.store.listing(products) if p not in local)
        self._write(done, {"key": key, "summary": summary, "files": _product_files(products)})
        return summary

    def _product_files(self, products: Path) -> dict[str, int]:
        """Files a closing step left, with sizes: in the store, when the run is there."""
        if self.store is None:
            return _product_files(products)
        listed = self.store.listing(products)
        return {str(p.relative_to(products)): size for p, size in sorted(listed.items())}

    def _mapper(self, name: str) -> Any:
        """`executor.map` with a progress bar per call (corpus-wide and closing steps can be long)."""

        def mapped(fn: Any, items: list[Any], label: str = "") -> list[Any]:
            executor = self.executor
            with self._bars() as bars:
                bar = bars.add_task(f"{name}: {label}"[:40], total=len(items) or 1, unit="items")
                # with the run in object storage, a node's disk is its own: keep the step's files on this one
                here = self.store is not None
                return executor.map(fn, items, label, on_done=lambda: bars.advance(bar), here=here)

        return mapped

    def _logger(self, name: str) -> Any:
        return lambda line: self.ticker.print(f"{name}: {escape(line)}")

    def _prepare_stage(
        self, spec: StageSpec, stage_dir: Path, shards: list[tuple[Path, str, int]]
    ) -> tuple[Path | None, str]:
        """Run a stage's corpus-wide step once, or reuse its artifacts if its inputs are unchanged."""
        if not spec.cls.has_prepare():
            return None, ""
        workdir = stage_dir / "_prepare"
        artifacts = workdir / "artifacts"
        key = fingerprint([spec.key, *(xxh for _, xxh, _ in shards)])
        done = workdir / "done.json"
        if self.store is not None and done.is_file():
            artifacts.mkdir(parents=True, exist_ok=True)  # a store keeps no empty folders
        if done.is_file() and read_json(done).get("key") == key and artifacts.is_dir():
            return artifacts, read_json(done)["fingerprint"]
        self._need([p for p, _, _ in shards])
        shutil.rmtree(artifacts, ignore_errors=True)
        artifacts.mkdir(parents=True)
        self._remove([done])
        if self.store is not None:  # the corpus-wide step runs on this machine: bring what it reads here
            self.store.pull_missing([*(p for p, _, _ in shards), *self.store.listing(self.out / "rejects")])
        self._fresh = True
        self.ticker.print(f"{spec.name}: corpus-wide step over {len(shards)} shards …")
        ctx = PrepareContext(
            [p for p, _, _ in shards],
            artifacts,
            self._mapper(spec.name),
            log=self._logger(spec.name),
            progress=self.options.progress and self.console.is_terminal,
            output=self.out,
        )
        with self.ticker.step(f"{spec.name}: corpus-wide step"):
            spec.cls.prepare(spec.config, ctx)
        files = sorted(p for p in artifacts.rglob("*") if p.is_file())
        fp = fingerprint([f"{p.relative_to(artifacts)}={file_hash(p)}" for p in files])
        self._write(done, {"key": key, "fingerprint": fp})
        return artifacts, fp

    def _execute(self, name: str, units: list[Unit], unit_name: str) -> tuple[list[dict[str, Any]], tuple[float, int]]:
        """Run the units not finished yet; return every unit's marker in plan order, wall time, fresh bytes."""
        markers: dict[Path, dict[str, Any]] = {}
        todo = []
        gone = self._gone(units)
        listed = None if self.store is None else self.store.listing()
        size_of = _local_size if listed is None else listed.get
        for unit in units:
            marker = _finished(unit, gone, size_of)
            if marker is None:
                todo.append(unit)
            else:
                markers[unit.done_path] = marker
        resumed = len(units) - len(todo)
        failures: list[TaskFailed] = []
        fresh_bytes = 0
        if not todo:
            self.ticker.print(f"{name}: all {len(units):,} {'files' if name == 'ingest' else 'shards'} done earlier")
            return [markers[u.done_path] for u in units], (0.0, 0)
        self._need([u.task.in_path for u in todo if isinstance(u.task, StageTask)], listed)
        self._fresh = True
        executor = self.executor  # started here (Ray takes seconds), outside the stage's timing
        start = time.perf_counter()
        label = f"{name}" + (f" ({resumed} resumed)" if resumed else "")
        with self._bars() as bars:
            bar = bars.add_task(label, total=sum(u.docs for u in todo) or 1, unit=unit_name)
            by_task = {id(u.task): u for u in todo}
            for task, result in executor.run([u.task for u in todo]):
                unit = by_task[id(task)]
                if isinstance(result, TaskFailed):
                    failures.append(result)
                    bars.print(f"[red]error[/red]: {name}: {escape(str(result))}", highlight=False)
                else:
                    markers[unit.done_path] = result
                    for warning in result["warnings"]:
                        bars.print(f"[yellow]warning[/yellow]: {escape(warning)}", highlight=False)
                    fresh_bytes += result["stats"]["bytes_in"]
                bars.advance(bar, unit.docs)
        full = next((f.error for f in failures if isinstance(f.error, OSError) and f.error.errno in NO_SPACE), None)
        if full is not None:  # the cause and the remedy are the same for every unit: said once, by `run`
            raise OSError(full.errno, full.strerror)
        if failures:
            raise RunFailed(
                f"{name}: {len(failures)} of {len(units)} units failed (first: {failures[0]}); "
                "finished shards are kept: fix the cause and rerun the same command to resume"
            )
        return [markers[u.done_path] for u in units], (time.perf_counter() - start, fresh_bytes)

    def _bars(self) -> Bars:
        return Bars(self.ticker, self.options.progress)

    def _clean_dir(self, stage_dir: Path, markers: list[dict[str, Any]], rejects_dir: Path) -> None:
        """Delete leftovers (temp files, shards of inputs no longer in the run) so outputs match the plan."""
        keep_shards = {o["path"] for m in markers for o in m["outputs"]}
        keep_rejects = {m["rejects"]["path"] for m in markers if m["rejects"]}
        for folder, keep in ((stage_dir / "shards", keep_shards), (rejects_dir, keep_rejects)):
            if folder.is_dir():
                for f in folder.iterdir():
                    if f.name not in keep:
                        f.unlink()
            if self.store is not None:
                self.store.delete(p for p in self.store.listing(folder) if p.name not in keep)
        done_dir = stage_dir / "_done"
        if done_dir.is_dir():
            for f in done_dir.iterdir():
                if f.name.endswith(TMP_SUFFIX):
                    f.unlink()

    def _remove_stale_stage_dirs(self) -> None:
        """Stage folders and rejects of stages no longer in the pipeline would mislead: remove them."""
        current = {"00-ingest"} | {self._stage_dir(i, s).name for i, s in enumerate(self.pipeline.stages, 1)}
        names = {INPUT_STAGE} | {s.name for s in self.pipeline.stages}
        for child in self.out.iterdir():
            if child.is_dir() and _STAGE_DIR.match(child.name) and child.name not in current:
                shutil.rmtree(child)
        rejects = self.out / "rejects"
        if rejects.is_dir():
            for child in rejects.iterdir():
                if child.name not in names:
                    shutil.rmtree(child)
        if self.store is not None:
            stale = []
            for path in self.store.listing():
                top, *rest = path.relative_to(self.out).parts
                if (_STAGE_DIR.match(top) and top not in current) or (top == "rejects" and rest[0] not in names):
                    stale.append(path)
            self._remove(stale)

    def _summary(
        self, stages: list[dict[str, Any]], shards: list[tuple[Path, str, int]], wall: float
    ) -> dict[str, Any]:
        records_in = stages[0]["docs_in"]
        kept = stages[-1]["kept"]
        rejected = sum(s["rejected_total"] for s in stages)
        if records_in != kept + rejected:
            raise CleaningError(f"conservation failed: {records_in} records in != {kept} kept + {rejected} rejected")
        final_dir = shards[0][0].parent if shards else self.out
        where = self.store.url_of if self.store is not None else str
        summary = {
            "output": self.store.url if self.store is not None else str(self.out),
            "final_shards": where(final_dir),
            "wall_seconds": round(wall, 3),
            "stages": stages,
            "conservation": {"records_in": records_in, "kept": kept, "rejected": rejected},
            "skipped_inputs": self.skipped_inputs,
        }
        self._write(self.out / "summary.json", summary)
        return summary


def _deleted(stage_dir: Path) -> list[str]:
    """Names of the stage's shards deleted once the next stage had consumed them."""
    record = stage_dir / DELETED
    return read_json(record)["shards"] if record.is_file() else []


def _finished(unit: Unit, gone: set[str], size_of: Any) -> dict[str, Any] | None:
    """The unit's marker if it finished with the same key and its outputs are all in place
    (`size_of`: on disk, or in the store), or, with deletion on, were deleted after the next
    stage consumed them."""
    if not unit.done_path.is_file():
        return None
    try:
        marker = read_json(unit.done_path)
    except (ValueError, OSError):
        return None
    if marker.get("key") != unit.key:
        return None
    task = unit.task
    shards_dir = task.shards_dir if isinstance(task, IngestTask) else task.out_path.parent
    for entry in marker["outputs"]:
        size = size_of(shards_dir / entry["path"])
        if size == entry["bytes"]:
            continue
        if size is not None or entry["path"] not in gone:
            return None
    rejects = marker.get("rejects")
    if rejects and size_of(task.rejects_path) != rejects["bytes"]:
        return None
    return marker


def _local_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _local_files(folder: Path) -> list[Path]:
    """Files of a run's copy that mirror the store: all but the lock and the copy's own notes."""
    skip = {folder / OutputLock.NAME, folder / CLAIM}
    return [p for p in folder.rglob("*") if p.is_file() and p not in skip]


def _scratch(parts: tuple[str, ...]) -> bool:
    """A closing step's scratch (`NN-stage/_finish/`, but its done.json): this machine's own, kept
    between attempts so a resumed step reuses it, never published."""
    return parts[1:2] == ("_finish",) and parts[2:] != ("done.json",)


def _snapshot(out: Path) -> dict[Path, tuple[int, int]]:
    """Size and mtime of the files the driver writes (tasks publish their own shards, rejects and
    markers; a closing step's scratch stays local)."""
    found = {}
    for path in _local_files(out):
        parts = path.relative_to(out).parts
        if parts[0] == "rejects" or parts[1:2] in (("shards",), ("_done",)) or _scratch(parts):
            continue
        if path.name.endswith((TMP_SUFFIX, ".part")):
            continue
        st = path.stat()
        found[path] = (st.st_size, st.st_mtime_ns)
    return found


def _product_files(products: Path) -> dict[str, int]:
    """Every file a closing step left, with its size: a rerun redoes the step if any is gone or changed."""
    if not products.is_dir():
        return {}
    return {str(p.relative_to(products)): p.stat().st_size for p in sorted(products.rglob("*")) if p.is_file()}


def _outputs(markers: list[dict[str, Any]], shards_dir: Path) -> list[tuple[Path, str, int]]:
    """The shards a stage produced, in plan order: (path, content hash, rows)."""
    return [(shards_dir / o["path"], o["xxh3"], o["rows"]) for m in markers for o in m["outputs"]]


def _text_field_hint(folder: Path) -> list[str]:
    """String fields of the first quarantined record, longest value first: the likely text field."""
    for path in sorted(folder.glob("*.parquet")):
        for row in pq.read_table(path, columns=["text", "reject_reason"]).to_pylist():
            if row["reject_reason"] != "input.missing_text":
                continue
            try:
                record = orjson.loads(row["text"] or "")
            except orjson.JSONDecodeError:
                return []
            if not isinstance(record, dict):
                return []
            strings = {k: v for k, v in record.items() if isinstance(v, str)}
            return sorted(strings, key=lambda k: -len(strings[k]))
    return []
