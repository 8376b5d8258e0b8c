"""Load and validate the rule data in `rules/`: line rules, document rules and word lists.

A rule is data: an id, a one-line description, what it matches, and examples that must (and must
not) trigger it. Python holds only the generic machinery (regex, exact lines, block detectors,
metrics); adding a pattern, a list entry or a threshold needs no code change.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash
import yaml

from cleaning.errors import CleaningError
from cleaning.rules.metrics import METRICS
from cleaning.rules.words import WordLists, read_word_list

DEFAULT_RULES_DIR = Path(__file__).resolve().parents[2] / "rules"
BLOCKS = {
    "short_run": {"min_run", "max_chars"},
    "separator_trail": {"separators", "lead_separators", "max_chars"},
    "site_repeated": {"min_pages", "min_share"},
    "page_repeated": {"min_chars"},
    "line_model": {"model", "lexical", "threshold", "needs_boilerplate", "sentence_pieces", "continues"},
}
OPTIONAL_PARAMS = {"needs_boilerplate", "sentence_pieces", "continues"}  # the line model's: off when absent
WORD_METRICS = {"word_char_ratio", "word_hits_per_kchar", "word_line_ratio"}
# Measured on the whole page by the engine, not on the kept text alone: the page model's P(junk)
# (a trained model named in the rule's `model:`); the share of the page's characters the line rules
# removed; the characters of prose left (kept lines that end like a sentence or are long); the
# mis-decoded Japanese characters over all its lines, removed ones too (`mojibake`); the share of the
# kept characters in lines whose template (names masked) is on `site_pages` distinct pages of the
# site (one text repeated with a city or temple name swapped in: doorway pages); and the prose
# characters outside such lines (the page's own prose).
PAGE_METRICS = {
    "page_model",
    "boilerplate_share",
    "prose_chars",
    "mojibake_chars",
    "templated_share",
    "own_prose_chars",
}
TEMPLATE_METRICS = {"templated_share", "own_prose_chars"}  # these need the rule's `site_pages`


@dataclass
class LineRule:
    id: str
    description: str
    lines: frozenset[str] = frozenset()
    pattern: re.Pattern[str] | None = None
    block: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    max_chars: int = 0  # a pattern rule only looks at lines up to this long (0: any)
    after_model: bool = False  # runs last, on the output: removes its lines, changes no decision (`_line_rule`)
    match: list[str] = field(default_factory=list)
    no_match: list[str] = field(default_factory=list)


@dataclass
class DocRule:
    id: str
    description: str
    metric: str
    min: float | None = None
    max: float | None = None
    words: str = ""  # word-list name for word_* metrics
    model: str = ""  # model path (relative to the rules folder) for the page_model metric
    min_doc_chars: int = 0  # the rule applies only to documents at least this long
    site_pages: int = 0  # TEMPLATE_METRICS: distinct pages of the site (this one included) a template is on
    # the rule applies only when one of these (metric, min, max) conditions holds (None: always)
    when: list[tuple[str, float | None, float | None]] | None = None
    reject: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)

    def metric_key(self) -> str:
        return f"{self.metric}:{self.words}" if self.words else self.metric

    def applies(self, text: str) -> bool:
        return len(text) >= self.min_doc_chars

    def fails(self, value: float) -> bool:
        return (self.min is not None and value < self.min) or (self.max is not None and value > self.max)

    def threshold(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.min_doc_chars:
            parts.append(f"(docs >= {self.min_doc_chars} chars)")
        if self.when:
            alternatives = []
            for metric, lo, hi in self.when:
                bounds = " and ".join(
                    b for b in (lo is not None and f">= {lo:g}", hi is not None and f"<= {hi:g}") if b
                )
                alternatives.append(f"{metric} {bounds}")
            parts.append(f"(when {' or '.join(alternatives)})")
        return " and ".join(parts)


@dataclass
class RuleSet:
    line_rules: list[LineRule]
    doc_rules: list[DocRule]
    words: WordLists
    fingerprint: str
    directory: Path
    keywords: dict[str, list[str]] = field(default_factory=dict)  # keywords/*.txt: line-model keyword families


def rules_fingerprint(directory: Path) -> str:
    """Content hash of every rule file: editing a rule reruns the rules stage."""
    h = xxhash.xxh3_128()
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml", ".txt", ".json")):
        h.update(str(path.relative_to(directory)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def load_rules(directory: Path | str = "", disable: list[str] | None = None, overrides: dict | None = None) -> RuleSet:
    """Read `lines.yaml`, `documents.yaml` and `words/*.txt` from a rules folder."""
    directory = Path(directory) if directory else DEFAULT_RULES_DIR
    if not directory.is_dir():
        raise CleaningError(f"rules folder not found: {directory}")
    disabled = set(disable or [])
    overrides = overrides or {}
    line_data = _read_yaml(directory / "lines.yaml", "line_rules")
    doc_data = _read_yaml(directory / "documents.yaml", "document_rules")
    line_rules = [_line_rule(r, directory / "lines.yaml") for r in line_data]
    doc_rules = [_doc_rule(r, directory / "documents.yaml", overrides) for r in doc_data]
    ids = [r.id for r in line_rules] + [r.id for r in doc_rules]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CleaningError(f"{directory}: rule ids used twice: {duplicates}")
    unknown = (disabled | set(overrides)) - set(ids)
    if unknown:
        raise CleaningError(f"rules config names unknown rule ids {sorted(unknown)}")
    # every list is loaded (the page model reads all of them), so a list nobody uses is still checked
    word_files = sorted((directory / "words").glob("*.txt")) if (directory / "words").is_dir() else []
    words = WordLists({path.stem: read_word_list(path) for path in word_files})
    if len({r.site_pages for r in doc_rules if r.site_pages}) > 1:
        raise CleaningError(f"{directory}: document rules on {sorted(TEMPLATE_METRICS)} must agree on site_pages")
    missing = sorted({r.words for r in doc_rules if r.words} - set(words.names))
    if missing:
        raise CleaningError(f"{directory}: word lists not found in words/: {missing}")
    keyword_dir = directory / "keywords"
    keywords = {p.stem: read_word_list(p) for p in sorted(keyword_dir.glob("*.txt"))} if keyword_dir.is_dir() else {}
    return RuleSet(
        [r for r in line_rules if r.id not in disabled],
        [r for r in doc_rules if r.id not in disabled],
        words,
        rules_fingerprint(directory),
        directory,
        keywords,
    )


def _read_yaml(path: Path, key: str) -> list[dict[str, Any]]:
    if not path.is_file():
        raise CleaningError(f"rule file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CleaningError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get(key), list):
        raise CleaningError(f"{path}: expected a mapping with a '{key}' list")
    return data[key]


def _common(raw: Any, path: Path, allowed: set[str]) -> tuple[str, str]:
    if not isinstance(raw, dict) or not raw.get("id") or not raw.get("description"):
        raise CleaningError(f"{path}: every rule needs an 'id' and a 'description': {raw!r:.120}")
    unknown = set(raw) - allowed
    if unknown:
        raise CleaningError(f"{path}: rule {raw['id']}: unknown keys {sorted(unknown)}")
    return str(raw["id"]), str(raw["description"])


def _line_rule(raw: Any, path: Path) -> LineRule:
    keys = {"id", "description", "lines", "pattern", "max_chars", "block", "after_model", "examples"}
    rule_id, description = _common(raw, path, keys)
    kinds = [k for k in ("lines", "pattern", "block") if k in raw]
    if len(kinds) != 1:
        raise CleaningError(f"{path}: rule {rule_id}: give exactly one of lines, pattern, block")
    # A lines or pattern rule with `after_model: true` removes only lines the line model kept. The model
    # reads which rules removed a line's neighbours, so a new rule before it changes its input (one
    # that removed 400 date lines moved 29 page decisions and took 11,000 characters of prose with
    # them); after it, the rule removes its own lines and nothing else, with no retraining.
    after = raw.get("after_model", False)
    if not isinstance(after, bool) or (after and "block" in raw):
        raise CleaningError(f"{path}: rule {rule_id}: after_model is true or false, for lines and pattern rules")
    rule = LineRule(rule_id, description, max_chars=int(raw.get("max_chars") or 0), after_model=after)
    if "lines" in raw:
        rule.lines = frozenset(str(x).strip() for x in raw["lines"])
    elif "pattern" in raw:
        try:
            rule.pattern = re.compile(str(raw["pattern"]))
        except re.error as exc:
            raise CleaningError(f"{path}: rule {rule_id}: bad pattern: {exc}") from exc
        if rule.pattern.groupindex:
            raise CleaningError(f"{path}: rule {rule_id}: use (?:…) groups; named groups are reserved")
    else:
        block = raw["block"]
        if not isinstance(block, dict) or block.get("type") not in BLOCKS:
            raise CleaningError(f"{path}: rule {rule_id}: block needs a type among {sorted(BLOCKS)}")
        params = {k: v for k, v in block.items() if k != "type"}
        if not BLOCKS[block["type"]] - OPTIONAL_PARAMS <= set(params) <= BLOCKS[block["type"]]:
            raise CleaningError(f"{path}: rule {rule_id}: {block['type']} takes {sorted(BLOCKS[block['type']])}")
        if "continues" in params:
            try:
                params["continues"] = re.compile(str(params["continues"]))
            except re.error as exc:
                raise CleaningError(f"{path}: rule {rule_id}: bad continues pattern: {exc}") from exc
        rule.block, rule.params = block["type"], params
    examples = raw.get("examples") or {}
    rule.match = [_example(x, path, rule_id) for x in examples.get("match", [])]
    rule.no_match = [_example(x, path, rule_id) for x in examples.get("no_match", [])]
    if not rule.match or not rule.no_match:
        raise CleaningError(f"{path}: rule {rule_id}: needs examples with both match and no_match")
    return rule


def _example(raw: Any, path: Path, rule_id: str) -> str:
    """An example text, or `{repeat: TEXT, times: N}` for long ones."""
    if isinstance(raw, dict):
        if set(raw) != {"repeat", "times"}:
            raise CleaningError(f"{path}: rule {rule_id}: an example mapping takes repeat and times")
        return str(raw["repeat"]) * int(raw["times"])
    return str(raw)


def _doc_rule(raw: Any, path: Path, overrides: dict[str, Any]) -> DocRule:
    keys = {
        "id", "description", "metric", "min", "max", "words", "model", "min_doc_chars", "site_pages", "when",
        "examples",
    }  # fmt: skip
    rule_id, description = _common(raw, path, keys)
    raw = {**raw, **(overrides.get(rule_id) or {})}
    metric = raw.get("metric")
    known = sorted(METRICS) + sorted(WORD_METRICS) + sorted(PAGE_METRICS)
    if metric not in known:
        raise CleaningError(f"{path}: rule {rule_id}: unknown metric {metric!r}; known: {known}")
    if (metric == "page_model") != bool(raw.get("model")):
        raise CleaningError(f"{path}: rule {rule_id}: the page_model metric (and only it) needs 'model: PATH'")
    when = raw.get("when")
    if when is not None:
        items = when if isinstance(when, list) else [when]
        when = []
        for item in items:
            if not isinstance(item, dict) or set(item) - {"metric", "min", "max"} or item.get("metric") not in known:
                raise CleaningError(
                    f"{path}: rule {rule_id}: 'when' takes {{metric: M, min: X, max: Y}} (or a list of them, any "
                    "may hold), M a known metric"
                )
            when.append((str(item["metric"]), _num(item.get("min")), _num(item.get("max"))))
    uses = {metric, *(m for m, _, _ in when or [])}
    if bool(uses & TEMPLATE_METRICS) != bool(raw.get("site_pages")):
        raise CleaningError(
            f"{path}: rule {rule_id}: a rule on {sorted(TEMPLATE_METRICS)} (and only such a rule) needs 'site_pages: N'"
        )
    if (metric in WORD_METRICS) != bool(raw.get("words")):
        raise CleaningError(f"{path}: rule {rule_id}: word_* metrics (and only they) need 'words: LIST'")
    if raw.get("min") is None and raw.get("max") is None:
        raise CleaningError(f"{path}: rule {rule_id}: give min, max or both")
    examples = raw.get("examples") or {}
    rule = DocRule(
        rule_id,
        description,
        metric,
        None if raw.get("min") is None else float(raw["min"]),
        None if raw.get("max") is None else float(raw["max"]),
        str(raw.get("words") or ""),
        str(raw.get("model") or ""),
        int(raw.get("min_doc_chars") or 0),
        int(raw.get("site_pages") or 0),
        when,
        [_example(x, path, rule_id) for x in examples.get("reject", [])],
        [_example(x, path, rule_id) for x in examples.get("keep", [])],
    )
    if not rule.reject or not rule.keep:
        raise CleaningError(f"{path}: rule {rule_id}: needs examples with both reject and keep")
    return rule


def _num(value: Any) -> float | None:
    return None if value is None else float(value)
