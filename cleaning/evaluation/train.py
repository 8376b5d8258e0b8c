"""Train the rules stage's line and page models on line-labelled pages, with cross-validation over sites.

The pages must have been read by a run (`--run OUTPUT`), whose corpus gives the line statistics
(how common each line is on its site and across sites) exactly as the rules stage computes them.
Cross-validation folds group pages by site, so no site is in both the training and the test part of a
fold: the figures say how the models do on sites they never saw. The line model learns boilerplate (B)
against content (C) lines that no rule removes; the page model learns DROP (and, at half weight,
BORDER) pages against KEEP pages from what is left after line removal with out-of-fold line scores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from cleaning.errors import CleaningError
from cleaning.evaluation.align import PageResult, normalized_pieces
from cleaning.evaluation.evaluate import pages_of_run, run_normalizer
from cleaning.evaluation.runread import open_run, rebuild_stages
from cleaning.evaluation.score import score
from cleaning.hosts import host_of
from cleaning.pagelabels import PageLabel
from cleaning.rules.engine import RulesEngine, model_removals, page_metrics, page_repeats, with_boilerplate
from cleaning.rules.lexical import LexicalModel, fit_lexical, ngram_matrix
from cleaning.rules.linefeatures import CATEGORICAL, DocLines, Keywords, LineStats, feature_names, line_features
from cleaning.rules.linescan import Scanned
from cleaning.rules.linestats import CorpusLineStats, count_lines
from cleaning.rules.metrics import DocView
from cleaning.rules.pagefeatures import page_feature_matrix, page_feature_names
from cleaning.rules.ruleset import RuleSet, load_rules

LINE_PARAMS = {
    "objective": "binary", "learning_rate": 0.08, "num_leaves": 15, "min_data_in_leaf": 20, "feature_fraction": 0.8,
    "bagging_fraction": 0.8, "bagging_freq": 1, "lambda_l2": 1.0, "num_iterations": 150, "verbose": -1, "seed": 1,
    "deterministic": True, "num_threads": 1,
}  # fmt: skip
# the lexical line score: n-grams of a line's first and last LEXICAL_CUT characters, hashed into
# 2**LEXICAL_BITS buckets, logistic regression of strength 1/LEXICAL_C (rules/lexical.py)
LEXICAL_CUT, LEXICAL_BITS, LEXICAL_C = 20, 18, 1.0
# small trees, few of them: a few hundred pages, and every page of the corpus is scored
PAGE_PARAMS = {**LINE_PARAMS, "learning_rate": 0.05, "num_leaves": 7, "min_data_in_leaf": 20, "num_iterations": 100}
# What is known about pages whatever the labelled sample says: more of the page kept as content, or
# more prose, never makes it more likely junk; more of it scored as boilerplate never less likely.
# This keeps the model sane on documents unlike any labelled crawl page (short clean articles).
PAGE_MONOTONE = {
    "kept_share": -1, "exp_content": -1, "conf_content": -1, "prose_kept": -1, "sentence_end_char_ratio": -1,
    "mean_p_kept": 1, "mean_p_all": 1,
}  # fmt: skip


@dataclass
class LabelledPage:
    """A labelled page as the rules stage sees it: normalised lines, each with its raw line's label."""

    label: PageLabel
    host: str | None
    lines: list[str]
    owner: list[int]  # raw line of each normalised line
    line_labels: str
    scored: bool = True  # read by the run; pages that carry their own text elsewhere only train
    removed: list[str | None] = field(default_factory=list)  # what the rules (not the models) remove


@dataclass
class TrainingSet:
    pages: list[LabelledPage]
    x: np.ndarray  # line features of every line of every page
    page_of: np.ndarray
    rule_ids: list[str]
    names: list[str]  # line feature names
    template_pages: np.ndarray  # per line: the site's distinct pages sharing its template
    site_pages: int  # the templated_share rule's page count (0: no such rule)
    scanned: Scanned  # the lines as `linescan` read them (the lexical score's n-grams come from it)

    @property
    def col(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def load_training_pages(
    output: Path, label_paths: list[Path], minimum: int = 20, own_text: str = "training only, not scored"
) -> tuple[list[LabelledPage], Any, list[str]]:
    """Labelled pages with the text the run read and the run's own normalisation; `own_text` says
    what becomes of pages that carry their own text (not in the run)."""
    view = open_run(output)
    pages, read, warnings = pages_of_run(view, label_paths)
    normalize = run_normalizer(rebuild_stages(view, ("normalize",)))
    out = []
    for page in pages:
        if page.text is None:
            continue
        pieces = normalized_pieces(page.lines(), normalize)
        owner = [i for i, ps in enumerate(pieces) for _ in ps]
        lines = [s for ps in pieces for s in ps]
        if lines:
            labels = "".join(page.labels[i] for i in owner)
            out.append(LabelledPage(page, host_of(page.url), lines, owner, labels, page.id in read))
    missing = len(pages) - len(out)
    if missing:
        warnings.append(f"{missing} labelled pages are not in the run and carry no text (left out)")
    extra = sum(not p.scored for p in out)
    if extra:
        warnings.append(f"{extra} labelled pages carry their own text and are not in the run: {own_text}")
    if sum(p.scored for p in out) < minimum:
        raise CleaningError(f"only {len(out)} labelled pages found in the run {output}: too few to train on")
    return out, view, warnings


def corpus_stats(view: Any, workdir: Path, partitions: int, map_fn: Callable | None) -> CorpusLineStats:
    """The run's line statistics, counted over the shards its rules stage read."""
    before = None
    for entry in view.run.get("stages", []):
        if entry["stage"] == "rules":
            break
        before = entry["stage"]
    folder = view.stage_dir(before) if before else None
    shards_dir = (folder / "shards") if folder else view.output / "00-ingest" / "shards"
    shards = sorted(shards_dir.glob("*.parquet"))
    if not shards:
        raise CleaningError(f"no shards in {shards_dir}: the run must have finished the stage before rules")
    count_lines(shards, workdir, map_fn=map_fn, partitions=partitions)
    return CorpusLineStats(workdir)


def base_rules(rules: RuleSet) -> RuleSet:
    """The rules without the line model, to see what the rules alone remove (the page model's rule
    stays: the engine skips it when no score is given, and `simulate` gives one)."""
    return dataclasses.replace(rules, line_rules=[r for r in rules.line_rules if r.block != "line_model"])


def build(pages: list[LabelledPage], rules: RuleSet, stats: LineStats) -> TrainingSet:
    engine = RulesEngine(base_rules(rules), stats, models=False)
    rule_ids = [r.id for r in rules.line_rules if r.block != "line_model"]
    codes = {rule_id: i + 1 for i, rule_id in enumerate(rule_ids)}
    docs = []
    for page in pages:
        page.removed = engine.classify(page.lines, page.host)
        docs.append(DocLines([s.strip() for s in page.lines], page.host, [codes[r] if r else 0 for r in page.removed]))
    keywords = Keywords(rules.keywords)
    sc = Scanned.of([s for d in docs for s in d.lines])
    corpus = stats.lookup(docs, sc.hashes, sc.templates, sc.has_template)
    x = line_features(docs, keywords, stats, sc, corpus)
    page_of = np.repeat(np.arange(len(pages)), [len(p.lines) for p in pages])
    names = feature_names(keywords.names)
    return TrainingSet(pages, x, page_of, rule_ids, names, corpus["template_pages"], engine.site_pages, sc)


def fill_lexical(ts: TrainingSet, folds: int) -> tuple[LexicalModel, float]:
    """Out-of-fold lexical scores into the `lexical` column (folds by site: the line model learns
    from the scores sites never seen get), and the lexical model fitted on every training line,
    with its out-of-fold AUC."""
    from sklearn.metrics import roc_auc_score

    free, train, y, w = line_rows(ts)
    sc = ts.scanned
    rows = np.flatnonzero(free)
    ngrams = ngram_matrix(sc.cp, sc.starts, sc.lens, rows, LEXICAL_CUT, LEXICAL_BITS)
    at = np.full(len(free), -1)
    at[rows] = np.arange(rows.size)  # line -> its row of `ngrams`
    hosts = np.array([p.host or f"page:{p.label.id}" for p in ts.pages])
    out = np.zeros(len(free), dtype=np.float32)
    for test_pages in _folds(hosts, folds):
        test = np.isin(ts.page_of, test_pages)
        fit = train & ~test
        model = fit_lexical(ngrams[at[fit]], y[fit], w[fit], LEXICAL_CUT, LEXICAL_BITS, LEXICAL_C)
        scored = np.flatnonzero(test & free)
        out[scored] = model.score(sc.cp, sc.starts, sc.lens, scored)
    ts.x[:, ts.col["lexical"]] = out
    final = fit_lexical(ngrams[at[train]], y[train], w[train], LEXICAL_CUT, LEXICAL_BITS, LEXICAL_C)
    return final, round(float(roc_auc_score(y[train], out[train])), 4)


def apply_lexical(ts: TrainingSet, model: LexicalModel) -> None:
    """The lexical column of pages no model was trained on, as the stage computes it."""
    free = np.array([r is None for p in ts.pages for r in p.removed], dtype=bool)
    rows = np.flatnonzero(free)
    ts.x[:, ts.col["lexical"]] = 0.0
    ts.x[rows, ts.col["lexical"]] = model.score(ts.scanned.cp, ts.scanned.starts, ts.scanned.lens, rows)


def _folds(groups: np.ndarray, n: int) -> list[np.ndarray]:
    """Sites split into n folds (a site's pages all in one fold)."""
    from sklearn.model_selection import GroupKFold

    return [te for _, te in GroupKFold(n_splits=n).split(groups, groups=groups)]


def _fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, names: list[str], params: dict[str, Any], monotone: dict | None = None
) -> Any:
    import lightgbm

    if monotone:
        params = {**params, "monotone_constraints": [monotone.get(n, 0) for n in names]}
    cats = [c for c in CATEGORICAL if c in names]
    data = lightgbm.Dataset(x, y, weight=w, feature_name=names, categorical_feature=cats, free_raw_data=False)
    return lightgbm.train(params, data)


def line_rows(ts: TrainingSet) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lines the models learn from: not removed by a rule, labelled C or B. Returns the mask of
    rule-free lines, the training mask, y (1 = boilerplate) and weights (longer lines count more)."""
    labels = np.array([c for p in ts.pages for c in p.line_labels])
    free = np.array([r is None for p in ts.pages for r in p.removed])
    train = free & (labels != "N")
    chars = ts.x[:, ts.col["chars"]]
    return free, train, (labels == "B").astype(int), np.sqrt(chars + 1.0)


def page_targets(ts: TrainingSet) -> tuple[np.ndarray, np.ndarray]:
    verdicts = np.array([p.label.verdict for p in ts.pages])
    return (verdicts != "KEEP").astype(int), np.where(verdicts == "BORDER", 0.5, 1.0)


def kept_lines(ts: TrainingSet, i: int, p_line: np.ndarray, threshold: float, rules: RuleSet) -> np.ndarray:
    """Page i's lines the rules and the line model keep, as the engine decides them: `page.repeated`
    judged on what the model keeps, before the page features and the document rules."""
    page = ts.pages[i]
    free = np.array([r is None for r in page.removed], dtype=bool)
    rule = next((r for r in rules.line_rules if r.block == "line_model"), None)
    pieces = int(rule.params.get("sentence_pieces", 0)) if rule else 0
    continues = rule.params.get("continues") if rule else None
    lo, hi = np.searchsorted(ts.page_of, [i, i + 1])
    keep = free & ~model_removals(page.lines, free, p_line[lo:hi], threshold, pieces, continues)
    for repeated in (r for r in rules.line_rules if r.block == "page_repeated"):
        left = np.flatnonzero(keep)
        hits = page_repeats([page.lines[j].strip() for j in left.tolist()], repeated.params["min_chars"])
        keep[left[hits]] = False
    return keep


def page_matrix(ts: TrainingSet, p_line: np.ndarray, threshold: float, rules: RuleSet) -> np.ndarray:
    keeps = [kept_lines(ts, i, p_line, threshold, rules) for i in range(len(ts.pages))]
    keep = np.concatenate(keeps)
    views = []
    for page, k in zip(ts.pages, keeps, strict=True):
        views.append(DocView("\n".join(s for s, kk in zip(page.lines, k, strict=True) if kk)))
    names = list(rules.words.names)
    return page_feature_matrix(ts.col, ts.x, p_line, keep, ts.page_of, views, rules.words, names)


def cross_validate(
    ts: TrainingSet, rules: RuleSet, folds: int, line_threshold: float, log: Callable[[str], None]
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold P(boilerplate) per line and P(junk) per page, folds grouped by site."""
    free, train, y, w = line_rows(ts)
    hosts = np.array([p.host or f"page:{p.label.id}" for p in ts.pages])
    page_folds = _folds(hosts, folds)
    p_line = np.ones(len(y))
    for k, test_pages in enumerate(page_folds, 1):
        test = np.isin(ts.page_of, test_pages)
        fit = train & ~test
        model = _fit(ts.x[fit], y[fit], w[fit], ts.names, LINE_PARAMS)
        rows = test & free
        p_line[rows] = model.predict(ts.x[rows])
        log(f"line model, fold {k}/{folds}")
    p_line = gate(ts, rules, p_line)
    pm = page_matrix(ts, p_line, line_threshold, rules)
    py, pw = page_targets(ts)
    learns = reaches_page_model(ts, rules, p_line, line_threshold)
    p_page = np.zeros(len(ts.pages))
    names = page_feature_names(list(rules.words.names))
    for k, test_pages in enumerate(page_folds, 1):
        fit = np.setdiff1d(np.flatnonzero(learns), test_pages)
        model = _fit(pm[fit], py[fit], pw[fit], names, PAGE_PARAMS, PAGE_MONOTONE)
        p_page[test_pages] = model.predict(pm[test_pages])
        log(f"page model, fold {k}/{folds}")
    return p_line, p_page


def gate(ts: TrainingSet, rules: RuleSet, p_line: np.ndarray) -> np.ndarray:
    """The line model's abstention on documents without page furniture, as the engine applies it."""
    rule = next((r for r in rules.line_rules if r.block == "line_model"), None)
    if rule is None or not rule.params.get("needs_boilerplate"):
        return p_line
    removed = [p.removed for p in ts.pages]
    flat = np.array([r is not None for rem in removed for r in rem])
    evidence = with_boilerplate(ts.x[:, ts.col["site_share"]], flat, removed)
    return np.where(~flat & ~evidence, 0.0, p_line)


def reaches_page_model(ts: TrainingSet, rules: RuleSet, p_line: np.ndarray, threshold: float) -> np.ndarray:
    """Pages the page model decides: some text left and no other document rule rejects it. The model
    learns only from these, so it learns what the explicit rules leave to it (junk with prose in it),
    not what they already decide (little prose left, too short, adult words)."""
    others = [r for r in rules.doc_rules if r.metric != "page_model"]
    engine = RulesEngine(dataclasses.replace(base_rules(rules), doc_rules=others), models=False)
    out = np.zeros(len(ts.pages), dtype=bool)
    for i, page in enumerate(ts.pages):
        keep = kept_lines(ts, i, p_line, threshold, rules)
        kept = "\n".join(s for s, k in zip(page.lines, keep, strict=True) if k)
        if kept.strip():
            verdicts = engine.judge(DocView(kept), page=page_metrics_of(ts, i, keep))
            out[i] = not any(v.failed for v in verdicts)
    return out


def page_metrics_of(ts: TrainingSet, i: int, keep: np.ndarray) -> dict[str, float]:
    lo, hi = np.searchsorted(ts.page_of, [i, i + 1])
    return page_metrics(ts.pages[i].lines, keep, ts.template_pages[lo:hi], ts.site_pages)


def simulate(
    ts: TrainingSet, rules: RuleSet, p_line: np.ndarray, p_page: np.ndarray, line_t: float, page_t: float
) -> list[PageResult]:
    """What the rules stage would keep of each page with these scores and thresholds (the document
    rules included, the page model's at `page_t`), as `cleaning eval` results over raw lines."""
    doc_rules = [dataclasses.replace(r, max=page_t) if r.metric == "page_model" else r for r in rules.doc_rules]
    engine = RulesEngine(dataclasses.replace(base_rules(rules), doc_rules=doc_rules), models=False)
    results = []
    for i, page in enumerate(ts.pages):
        keep = kept_lines(ts, i, p_line, line_t, rules)
        kept = "\n".join(s for s, k in zip(page.lines, keep, strict=True) if k)
        reason = ""
        if kept.strip():
            metrics = {**page_metrics_of(ts, i, keep), "page_model": float(p_page[i])}
            failed = [v for v in engine.judge(DocView(kept), page=metrics) if v.failed]
            reason = failed[0].rule.id if failed else ""
            removed: list[str | None] = [None if k else "" for k in keep.tolist()]
            if engine.remove_last([s.strip() for s in page.lines], removed):  # as the engine: last, on the output
                keep = np.array([r is None for r in removed], dtype=bool)
                kept = "\n".join(s for s, k in zip(page.lines, keep, strict=True) if k)
        if not kept.strip():
            reason = "rules.all_lines_removed"
        n_raw = len(page.label.labels)
        chars = [0] * n_raw
        kept_raw = [False] * n_raw
        for line, owner, k in zip(page.lines, page.owner, keep, strict=True):
            chars[owner] += len(line)
            kept_raw[owner] = kept_raw[owner] or bool(k and not reason)
        status = "rejected" if reason else "kept"
        results.append(PageResult(page.label, status, reason, chars, kept_raw, [None] * n_raw))
    return results


def train_models(
    output: Path,
    label_paths: list[Path],
    rules_dir: Path,
    folds: int = 5,
    partitions: int = 4,
    map_fn: Callable | None = None,
    log: Callable[[str], None] = lambda _: None,
    test_paths: list[Path] | None = None,
) -> dict[str, Any]:
    """Cross-validate, then train both models on every page and write them with their cards into
    the rules folder (where lines.yaml and documents.yaml name them). Pages of `test_paths` are
    scored by the final models and never trained on."""
    started = time.perf_counter()
    rules = load_rules(rules_dir)
    line_rule = next((r for r in rules.line_rules if r.block == "line_model"), None)
    page_rule = next((r for r in rules.doc_rules if r.metric == "page_model"), None)
    if line_rule is None or page_rule is None:
        raise CleaningError(f"{rules_dir}: needs a line_model block rule and a page_model document rule to train")
    pages, view, warnings = load_training_pages(output, label_paths)
    test_pages = held_out_pages(output, test_paths or [], {p.label.id for p in pages}, warnings)
    for line in warnings:
        log(line)
    with tempfile.TemporaryDirectory(prefix="rules-train-") as tmp:
        log(f"counting lines over the corpus of {output}")
        stats = corpus_stats(view, Path(tmp), partitions, map_fn)
        ts = build(pages, rules, stats)
        test = build(test_pages, rules, stats) if test_pages else None
    line_t = float(line_rule.params["threshold"])
    page_t = float(page_rule.max if page_rule.max is not None else 0.5)
    log(f"{len(pages)} pages, {ts.x.shape[0]:,} lines; {folds}-fold cross-validation grouped by site")
    lexical, lexical_auc = fill_lexical(ts, folds)
    log(f"lexical line score: out-of-fold AUC {lexical_auc}")
    if test is not None:
        apply_lexical(test, lexical)
    p_line, p_page = cross_validate(ts, rules, folds, line_t, log)
    cv = cv_report(ts, rules, p_line, p_page, line_t, page_t)
    _, train, y, w = line_rows(ts)
    line_model = _fit(ts.x[train], y[train], w[train], ts.names, LINE_PARAMS)
    # the page model learns from out-of-fold line scores: those are what unseen pages will look like
    pm = page_matrix(ts, p_line, line_t, rules)
    py, pw = page_targets(ts)
    learns = reaches_page_model(ts, rules, p_line, line_t)
    names = page_feature_names(list(rules.words.names))
    page_model = _fit(pm[learns], py[learns], pw[learns], names, PAGE_PARAMS, PAGE_MONOTONE)
    if test is not None:
        cv["held_out"] = held_out_report(test, rules, line_model, page_model, line_t, page_t)
        log(f"held-out: {len(test.pages)} pages no model was trained on")
    common = {
        "trained": date.today().isoformat(),
        "labels": [str(p) for p in label_paths],
        "labels_sha256": _labels_hash(ts.pages),
        "run": str(output),
        "pages": len(pages),
        "pages_scored": int(sum(p.scored for p in ts.pages)),
        "verdicts": {v: int(sum(p.label.verdict == v for p in ts.pages)) for v in ("KEEP", "DROP", "BORDER")},
        "cv": cv,
        "retrain": "cleaning rules train LABELS... --run OUTPUT (rules/README.md)",
    }
    line_card = {
        **common,
        "model": "line",
        "features": ts.names,
        "rules": ts.rule_ids,
        "params": LINE_PARAMS,
        "lines": int(train.sum()),
        "lexical": {**lexical.describe(), "file": line_rule.params["lexical"], "C": LEXICAL_C, "oof_auc": lexical_auc},
    }
    page_card = {
        **common,
        "model": "page",
        "features": page_feature_names(list(rules.words.names)),
        "params": PAGE_PARAMS,
    }
    lexical.save(rules.directory / line_rule.params["lexical"])
    _write(rules.directory / line_rule.params["model"], line_model, line_card)
    _write(rules.directory / page_rule.model, page_model, page_card)
    cv["seconds"] = round(time.perf_counter() - started, 1)
    return cv


def held_out_pages(output: Path, paths: list[Path], training: set[str], warnings: list[str]) -> list[LabelledPage]:
    """Test pages read by the run; a page also in the training labels is an error (its figures would
    not be held out)."""
    if not paths:
        return []
    pages, _, more = load_training_pages(output, paths, minimum=1, own_text="left out")
    warnings += [f"held-out: {w}" for w in more]
    both = sorted({p.label.id for p in pages} & training)
    if both:
        raise CleaningError(f"{len(both)} held-out pages are also training pages (e.g. {both[0]}): keep the sets apart")
    return [p for p in pages if p.scored]


def held_out_report(
    ts: TrainingSet, rules: RuleSet, line_model: Any, page_model: Any, line_t: float, page_t: float
) -> dict[str, Any]:
    """The five figures on pages no model saw, as the rules stage alone would decide them (no quality
    stage or dedup after it): the honest check of a retrained model."""
    free = np.array([r is None for p in ts.pages for r in p.removed])
    p_line = np.ones(ts.x.shape[0])
    if free.any():
        p_line[free] = line_model.predict(ts.x[free])
    p_line = gate(ts, rules, p_line)
    p_page = page_model.predict(page_matrix(ts, p_line, line_t, rules))
    return score(simulate(ts, rules, p_line, p_page, line_t, page_t)).as_dict()


def cv_report(
    ts: TrainingSet, rules: RuleSet, p_line: np.ndarray, p_page: np.ndarray, line_t: float, page_t: float
) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    _, train, y, _ = line_rows(ts)
    py, _ = page_targets(ts)
    scored = np.array([p.scored for p in ts.pages])
    train &= scored[ts.page_of]
    verdicts = np.array([p.label.verdict for p in ts.pages])
    sure = (verdicts != "BORDER") & scored
    figures = {}
    for lt in sorted({0.3, 0.5, 0.7, line_t}):
        for pt in sorted({0.3, 0.5, 0.7, page_t}):
            results = simulate(ts, rules, p_line, p_page, lt, pt)
            figures[f"line {lt:g} / page {pt:g}"] = score(
                [r for r, s in zip(results, scored, strict=True) if s]
            ).as_dict()
    return {
        "line_auc": round(float(roc_auc_score(y[train], p_line[train])), 4),
        "page_auc": round(float(roc_auc_score(py[sure], p_page[sure])), 4),
        "at_thresholds": figures,
        "chosen": f"line {line_t:g} / page {page_t:g}",
    }


def _labels_hash(pages: list[LabelledPage]) -> str:
    h = hashlib.sha256()
    for p in sorted(pages, key=lambda p: p.label.id):
        h.update(f"{p.label.id}\t{p.label.labels}\t{p.label.verdict}\n".encode())
    return h.hexdigest()[:16]


def _write(base: Path, booster: Any, card: dict[str, Any]) -> None:
    """Model text and card, each written under a temporary name and renamed into place."""
    base.parent.mkdir(parents=True, exist_ok=True)
    model, card_path = base.with_suffix(".txt"), base.with_suffix(".json")
    tmp = model.with_name(model.name + ".tmp")
    booster.save_model(str(tmp))
    tmp.replace(model)
    tmp = card_path.with_name(card_path.name + ".tmp")
    tmp.write_text(json.dumps(card, indent=1, ensure_ascii=False, default=float) + "\n", encoding="utf-8")
    tmp.replace(card_path)
