"""rules: remove boilerplate lines, then reject documents that fail a quality rule (all rules in `rules/`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cleaning.document import Doc, Reject
from cleaning.rules.engine import RulesEngine
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, load_rules, rules_fingerprint
from cleaning.rules.sitelines import RESULT, MapJob, ReduceJob, host_of, map_shard, reduce_partition
from cleaning.stage import PrepareContext, Stage, register


@dataclass
class RulesConfig:
    rules_dir: str = field(
        default="", metadata={"help": "folder with lines.yaml, documents.yaml, words/ (default: rules/)"}
    )
    disable: list[str] = field(default_factory=list, metadata={"help": "rule ids to switch off"})
    overrides: dict[str, dict[str, float]] = field(
        default_factory=dict, metadata={"help": "document-rule thresholds, e.g. {doc.too_short: {min: 100}}"}
    )
    site_partitions: int = field(default=16, metadata={"help": "partitions of the site-level line count"})

    def __post_init__(self) -> None:
        # Absolute, so Ray workers with another working directory read the same rules.
        self.rules_dir = str(Path(self.rules_dir).resolve() if self.rules_dir else DEFAULT_RULES_DIR)


@register
class Rules(Stage):
    """Japanese boilerplate-line removal and document quality rules, all defined as data in rules/."""

    name = "rules"
    Config = RulesConfig

    def __init__(self, config: RulesConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        site = np.load(artifacts / RESULT) if artifacts and (artifacts / RESULT).is_file() else None
        self.engine = RulesEngine(load_rules(config.rules_dir, config.disable, config.overrides), site)

    @classmethod
    def data_fingerprint(cls, config: RulesConfig) -> str:
        return rules_fingerprint(Path(config.rules_dir))

    @classmethod
    def prepare(cls, config: RulesConfig, ctx: PrepareContext) -> None:
        """Count lines per host over the whole corpus for the site_repeated rule."""
        rules = load_rules(config.rules_dir, config.disable, config.overrides)  # fail fast on bad rules
        site_rules = [r for r in rules.line_rules if r.block == "site_repeated"]
        if not site_rules:
            return
        params = site_rules[0].params
        spill = ctx.workdir / "spill"
        spill.mkdir()
        ctx.map(map_shard, [MapJob(s, spill, config.site_partitions) for s in ctx.shards], "count lines per host")
        jobs = [ReduceJob(spill, p, params["min_pages"], params["min_share"]) for p in range(config.site_partitions)]
        keys = ctx.map(reduce_partition, jobs, "find repeated lines")
        np.save(ctx.workdir / RESULT, np.sort(np.concatenate(keys)) if keys else np.empty(0, np.uint64))
        for path in spill.iterdir():
            path.unlink()
        spill.rmdir()

    def apply(self, doc: Doc, counters: Counter[str]) -> Doc | Reject:
        analysis = self.engine.analyse(doc.text, host_of(doc.fields.get("url")))
        lines = analysis.lines
        for i, rule in enumerate(analysis.removed_by):
            if rule is not None:
                counters["lines_removed." + rule] += 1
                counters["chars_removed." + rule] += len(lines[i])
        if not analysis.text.strip():
            return Reject(doc, "rules.all_lines_removed", f"{len(analysis.lines)} lines, all boilerplate")
        failed = analysis.failed
        if failed:
            v = failed[0]
            return Reject(doc, v.rule.id, f"{v.rule.metric_key()}={v.value:.4g}, needs {v.rule.threshold()}")
        doc.text = analysis.text
        return doc
