"""Run every rule's own examples: used by the test suite and by `cleaning rules check`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from cleaning.rules.engine import RulesEngine
from cleaning.rules.linestats import stats_for
from cleaning.rules.metrics import DocView
from cleaning.rules.ruleset import PAGE_METRICS, DocRule, LineRule, RuleSet


@dataclass(frozen=True)
class Example:
    rule_id: str
    text: str
    expected: bool  # True: the rule must fire (match / reject)

    index: int = 0

    @property
    def label(self) -> str:
        return f"{self.rule_id}:{'fires' if self.expected else 'passes'}:{self.index}"


def iter_examples(rules: RuleSet) -> Iterator[Example]:
    for rule in rules.line_rules:
        yield from (Example(rule.id, t, True, i) for i, t in enumerate(rule.match))
        yield from (Example(rule.id, t, False, i) for i, t in enumerate(rule.no_match))
    for doc_rule in rules.doc_rules:
        yield from (Example(doc_rule.id, t, True, i) for i, t in enumerate(doc_rule.reject))
        yield from (Example(doc_rule.id, t, False, i) for i, t in enumerate(doc_rule.keep))


def fires(rules: RuleSet, engine: RulesEngine, example: Example) -> tuple[bool, str]:
    """Whether the example's own rule fires on it, and what was measured."""
    line_rules = {r.id: r for r in rules.line_rules}
    if example.rule_id in line_rules:
        return _line_rule_fires(line_rules[example.rule_id], engine, example)
    doc_rule: DocRule = next(r for r in rules.doc_rules if r.id == example.rule_id)
    if not doc_rule.applies(example.text):  # an example the rule never sees proves nothing
        return not example.expected, f"example is shorter than min_doc_chars={doc_rule.min_doc_chars}"
    if doc_rule.site_pages:
        return _templated_fires(doc_rule, engine, example)
    if doc_rule.metric in PAGE_METRICS or doc_rule.when is not None:
        # measured on the whole page: run the line analysis, then read this rule's verdict
        analysis = engine.analyse(example.text, None, all_verdicts=True)
        verdict = next((v for v in analysis.verdicts if v.rule.id == doc_rule.id), None)
        if verdict is None:
            return False, f"not applied (page metrics {analysis.page})"
        return verdict.failed, f"{doc_rule.metric_key()}={verdict.value:.4g} (needs {doc_rule.threshold()})"
    value = engine.value(DocView(example.text), doc_rule)
    return doc_rule.fails(value), f"{doc_rule.metric_key()}={value:.4g} (needs {doc_rule.threshold()})"


def _line_rule_fires(rule: LineRule, engine: RulesEngine, example: Example) -> tuple[bool, str]:
    text = example.text
    if rule.lines:
        return text.strip() in rule.lines, "exact line"
    if rule.pattern is not None:
        return rule.pattern.fullmatch(text.strip()) is not None, "pattern"
    if rule.block == "site_repeated":
        return _site_fires(rule, engine, example)
    if rule.block == "line_model":
        analysis = engine.analyse(text, None)
        hits = [i for i, r in enumerate(analysis.removed_by) if r == rule.id]
        return bool(hits), f"removes {len(hits)} of {len(analysis.lines)} lines"
    lines = text.split("\n")
    hits = engine._block_hits(rule, lines, None)
    return bool(hits), f"removes {len(set(hits))} of {len(lines)} lines"


def _site_fires(rule: LineRule, engine: RulesEngine, example: Example) -> tuple[bool, str]:
    """A 3-page site: a `match` line is put on every page, a `no_match` line on the first only."""
    host = "koumuten.example.jp"
    pages = [f"この会社の施工事例その{i}をご紹介します。" for i in range(3)]
    texts = [f"{page}\n{example.text}" if example.expected or i == 0 else page for i, page in enumerate(pages)]
    rows = [{"text": t, "url": f"https://{host}/p{i}"} for i, t in enumerate(texts)]
    site_engine = RulesEngine(engine.rules, stats_for(rows), models=False)
    removed = site_engine.classify(texts[0].split("\n"), host)
    return removed[-1] == rule.id, f"line on {3 if example.expected else 1} of 3 pages"


# names put into an example's `{place}` slots, one per page of the example's site
PLACES = ["霞野市", "桜川町", "北浜村", "東雲台", "若葉区"]


def _templated_fires(rule: DocRule, engine: RulesEngine, example: Example) -> tuple[bool, str]:
    """A site of `site_pages` pages: the example, and pages made of its lines that have a `{place}`
    slot, each page with another name in the slots (a doorway template). The example is judged."""
    host = "doorway.example.jp"
    slots = [line for line in example.text.split("\n") if "{place}" in line]
    texts = [example.text.replace("{place}", PLACES[0])]
    texts += ["\n".join(slots).replace("{place}", PLACES[i % len(PLACES)]) for i in range(1, rule.site_pages)]
    rows = [{"text": t, "url": f"https://{host}/p{i}"} for i, t in enumerate(texts)]
    site_engine = RulesEngine(engine.rules, stats_for(rows), models=False)
    analysis = site_engine.analyse(texts[0], rows[0]["url"], all_verdicts=True)
    verdict = next((v for v in analysis.verdicts if v.rule.id == rule.id), None)
    if verdict is None:
        return False, f"not applied (page metrics {analysis.page})"
    n = rule.site_pages
    return verdict.failed, f"{rule.metric_key()}={verdict.value:.4g} on a site of {n} pages (needs {rule.threshold()})"
