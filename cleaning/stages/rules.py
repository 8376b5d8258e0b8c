"""rules: remove boilerplate lines, then reject documents that fail a quality rule (all rules in `rules/`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from cleaning.document import Doc, Reject, StageResult
from cleaning.errors import CleaningError
from cleaning.rules.engine import Analysis, RulesEngine
from cleaning.rules.linestats import META, CorpusLineStats, count_lines
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, RuleSet, load_rules, rules_fingerprint
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
    site_partitions: int = field(
        default=0, metadata={"help": "partitions of the corpus-wide line count; 0 = from the data size"}
    )
    site_partition_mb: float = field(
        default=128.0,
        metadata={"help": "MB of spill per partition of the line count (a reducer needs several times that)"},
    )

    def __post_init__(self) -> None:
        if self.site_partitions < 0 or not self.site_partition_mb > 0:
            raise CleaningError("rules: site_partitions must be >= 0 and site_partition_mb above 0")
        # Absolute, so Ray workers with another working directory read the same rules.
        self.rules_dir = str(Path(self.rules_dir).resolve() if self.rules_dir else DEFAULT_RULES_DIR)


@register
class Rules(Stage):
    """Japanese boilerplate-line removal and document quality rules, all defined as data in rules/."""

    name = "rules"
    Config = RulesConfig

    def __init__(self, config: RulesConfig, artifacts: Path | None = None) -> None:
        super().__init__(config, artifacts)
        stats = CorpusLineStats(artifacts) if artifacts and (artifacts / META).is_file() else None
        self.engine = RulesEngine(load_rules(config.rules_dir, config.disable, config.overrides), stats)

    @classmethod
    def data_fingerprint(cls, config: RulesConfig) -> str:
        return rules_fingerprint(Path(config.rules_dir))

    @classmethod
    def prepare(cls, config: RulesConfig, ctx: PrepareContext) -> None:
        """Count, over the whole corpus, on how many pages of its site and on how many sites each line
        occurs (the line model's and the site_repeated rule's input)."""
        rules = load_rules(config.rules_dir, config.disable, config.overrides)  # fail fast on bad rules
        if needs_line_stats(rules):
            count_lines(ctx.shards, ctx.workdir, config.site_partition_mb, ctx.map, config.site_partitions)

    def line_verdicts(self, doc: Doc) -> list[str | None]:
        return self.engine.analyse(doc.text, doc.fields.get("url")).removed_by

    def process(self, docs: list[Doc]) -> StageResult:
        analyses = self.engine.analyse_batch([(d.text, d.fields.get("url")) for d in docs])
        result = StageResult()
        for doc, analysis in zip(docs, analyses, strict=True):
            out = self._decide(doc, analysis, result.counters)
            (result.rejected if isinstance(out, Reject) else result.kept).append(out)  # type: ignore[arg-type]
        return result

    @staticmethod
    def _decide(doc: Doc, analysis: Analysis, counters: Counter[str]) -> Doc | Reject:
        removed: dict[str, int] = {}  # plain dicts: this loop sees every line of the corpus
        chars: dict[str, int] = {}
        lines_of, chars_of = removed.get, chars.get
        for line, rule in zip(analysis.lines, analysis.removed_by, strict=True):
            if rule is not None:
                removed[rule] = lines_of(rule, 0) + 1
                chars[rule] = chars_of(rule, 0) + len(line)
        for rule, n in removed.items():
            counters["lines_removed." + rule] += n
            counters["chars_removed." + rule] += chars[rule]
        if not analysis.text.strip():
            return Reject(doc, "rules.all_lines_removed", f"{len(analysis.lines)} lines, all boilerplate")
        failed = analysis.failed
        if failed:
            v = failed[0]
            return Reject(doc, v.rule.id, f"{v.rule.metric_key()}={v.value:.4g}, needs {v.rule.threshold()}")
        doc.text = analysis.text
        return doc


def needs_line_stats(rules: RuleSet) -> bool:
    return any(r.block in ("site_repeated", "line_model") for r in rules.line_rules)
