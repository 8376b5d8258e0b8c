"""Apply a RuleSet to documents: which lines go (and by which rule), then document verdicts.

Order, for a batch of documents:
1. per line, the exact-line and pattern rules, then the block detectors (menus, vertical breadcrumbs,
   site-repeated lines): each removes what it matches;
2. the line model scores every line left (P(boilerplate), from its shape, its neighbours, the rules
   around it and how common it is in the corpus) and removes those above its threshold;
3. the document rules judge the kept text in file order; the page model's P(junk) is one of them.
Scores are computed for the whole batch at once (the models predict one matrix per batch).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import numpy as np

from cleaning.hosts import host_of
from cleaning.rules.lexical import LexicalModel
from cleaning.rules.linefeatures import DocLines, Keywords, LineStats, feature_names, line_features
from cleaning.rules.linescan import Scanned
from cleaning.rules.metrics import LINE_END_CHARS, DocView
from cleaning.rules.models import Model, rule_codes
from cleaning.rules.mojibake import mojibake_chars
from cleaning.rules.pagefeatures import page_feature_matrix, page_feature_names
from cleaning.rules.prefilter import PatternSet
from cleaning.rules.ruleset import PAGE_METRICS, DocRule, LineRule, RuleSet


@dataclass
class Verdict:
    rule: DocRule
    value: float
    failed: bool


@dataclass
class Analysis:
    """Everything the rules decided about one document (the stage, `rules explain` and `eval` share it)."""

    lines: list[str]
    removed_by: list[str | None]  # rule id per line, None when kept
    text: str  # the kept lines
    verdicts: list[Verdict]
    p_line: np.ndarray | None = None  # P(boilerplate) per line from the line model (1 where a rule removed it)
    page: dict[str, float] = field(default_factory=dict)  # boilerplate_share, prose_chars, mojibake_chars, page_model…

    @property
    def p_page(self) -> float | None:
        """P(junk) of the kept page from the page model."""
        return self.page.get("page_model")

    @property
    def failed(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.failed]


class RulesEngine:
    """Compiled rules and models. Stateless per document, so one engine serves a whole worker."""

    def __init__(self, rules: RuleSet, stats: LineStats | None = None, models: bool = True) -> None:
        """`models=False` leaves the trained models unloaded (training them, or judging with given scores)."""
        self.rules = rules
        self.stats = stats or LineStats()
        self._exact: dict[str, str] = {}
        before = [r for r in rules.line_rules if not r.after_model]
        for rule in before:
            for line in rule.lines:
                self._exact.setdefault(line, rule.id)
        patterns = [r for r in before if r.pattern is not None]
        self._pattern_ids = [r.id for r in patterns]
        # The stage's hot loop: a line is tried only against the patterns whose max_chars admits it
        # and whose necessary text it holds (most lines hold none).
        self._patterns = PatternSet([r.pattern for r in patterns], [r.max_chars or _UNLIMITED for r in patterns])  # type: ignore[misc]
        self._blocks = [r for r in rules.line_rules if r.block and r.block not in ("line_model", "page_repeated")]
        # applied to the lines the line model keeps: what is repeated is judged on what is left
        self._after_model = [r for r in rules.line_rules if r.block == "page_repeated"]
        # `after_model` rules: applied last, to the text every decision was made on; they remove their
        # own lines from the output and change nothing else (the models see what they were trained on)
        self._last = [r for r in rules.line_rules if r.after_model]
        self._memo: dict[str, str | None] = {}  # nav lines recur across pages: most lookups hit
        self.keywords = Keywords(rules.keywords)
        self.line_names = feature_names(self.keywords.names)
        self._col = {name: i for i, name in enumerate(self.line_names)}
        model_rules = [r for r in rules.line_rules if r.block == "line_model"]
        self.line_rule = model_rules[0] if model_rules else None
        self.line_model: Model | None = None
        self.lexical: LexicalModel | None = None
        self._codes = {r.id: 0 for r in rules.line_rules}
        if self.line_rule is not None and models:
            self.line_model = Model(rules.directory / self.line_rule.params["model"], self.line_names)
            self.lexical = LexicalModel.load(rules.directory / self.line_rule.params["lexical"], self.line_model.card)
            self._codes = rule_codes(self.line_model.card, [r.id for r in rules.line_rules])
        page_rules = [r for r in rules.doc_rules if r.metric == "page_model"]
        self.page_model: Model | None = None
        self.word_lists = list(rules.words.names)
        if page_rules and models:
            self.page_model = Model(rules.directory / page_rules[0].model, page_feature_names(self.word_lists))
        self.site_pages = next((r.site_pages for r in rules.doc_rules if r.site_pages), 0)

    # --- per line -------------------------------------------------------------------------------
    def line_rule_of(self, line: str) -> str | None:
        """The per-line rule (exact list or pattern) that removes this stripped line, if any."""
        try:
            return self._memo[line]
        except KeyError:
            pass
        if len(self._memo) >= _MEMO_SIZE:
            self._memo.clear()
        rule = self._memo[line] = self._match_line(line)
        return rule

    def _match_line(self, line: str) -> str | None:
        rule = self._exact.get(line)
        if rule is None:
            i = self._patterns.first_match(line)
            if i is not None:
                rule = self._pattern_ids[i]
        return rule

    def classify(
        self, lines: list[str], host: str | None, site: tuple[np.ndarray, float] | None = None
    ) -> list[str | None]:
        """Rule ids of the lines the rules (not the line model) remove; `site`: the lines' site share
        and the site's page count (`LineStats.site_share`) when the caller has them."""
        return self._classify_stripped([line.strip() for line in lines], host, site)

    def _classify_stripped(
        self, stripped: list[str], host: str | None, site: tuple[np.ndarray, float] | None
    ) -> list[str | None]:
        """`classify` of lines already stripped (a batch strips every line once)."""
        known = self._memo.get
        removed = [known(s, _UNSEEN) for s in stripped]  # one dict lookup per line: most lines recur
        for i, rule in enumerate(removed):
            if rule is _UNSEEN:
                removed[i] = self.line_rule_of(stripped[i])
        for rule in self._blocks:
            for i in self._block_hits(rule, stripped, host, site):
                if removed[i] is None:
                    removed[i] = rule.id
        return removed

    def remove_last(self, lines: list[str], removed: list[str | None]) -> bool:
        """The `after_model` rules on the stripped lines still kept (`removed` is updated); whether any fired."""
        fired = False
        for rule in self._last:
            limit = rule.max_chars or _UNLIMITED
            for j, s in enumerate(lines):
                if removed[j] is None and (
                    s in rule.lines or (rule.pattern is not None and len(s) <= limit and rule.pattern.fullmatch(s))
                ):
                    removed[j] = rule.id
                    fired = True
        return fired

    def _block_hits(
        self, rule: LineRule, lines: list[str], host: str | None, site: tuple[np.ndarray, float] | None = None
    ) -> list[int]:
        """Indexes of the lines a block rule removes."""
        if rule.block == "short_run":
            return short_runs(lines, rule.params["min_run"], rule.params["max_chars"])
        if rule.block == "separator_trail":
            p = rule.params
            return separator_trails(lines, p["separators"], p["lead_separators"], p["max_chars"])
        if rule.block == "page_repeated":
            return page_repeats(lines, rule.params["min_chars"])
        if rule.block == "site_repeated":
            share, pages = site if site is not None else self.stats.site_share(host, lines)
            if pages < rule.params["min_pages"]:
                return []
            enough = share * pages >= rule.params["min_pages"]
            return np.flatnonzero((share >= rule.params["min_share"]) & enough).tolist()
        return []

    # --- per batch ------------------------------------------------------------------------------
    def analyse(self, text: str, url: str | None, all_verdicts: bool = False) -> Analysis:
        return self.analyse_batch([(text, url)], all_verdicts)[0]

    def analyse_batch(self, docs: list[tuple[str, str | None]], all_verdicts: bool = False) -> list[Analysis]:
        """Line removal and document verdicts for a batch of (text, url)."""
        items = [(text, host_of(url)) for text, url in docs]
        all_lines = [text.split("\n") for text, _ in items]
        sizes = [len(lines) for lines in all_lines]
        bounds = np.cumsum([0, *sizes]).tolist()
        docs_lines = [
            DocLines([s.strip() for s in lines], host, []) for lines, (_, host) in zip(all_lines, items, strict=True)
        ]
        scanned = Scanned.of([s for d in docs_lines for s in d.lines])
        # one corpus lookup per batch: the site_repeated rule and the line features read the same tables
        corpus = self.stats.lookup(docs_lines, scanned.hashes, scanned.templates, scanned.has_template)
        pages = np.rint(np.expm1(corpus["site_pages"]))
        removed = [
            self._classify_stripped(
                d.lines,
                d.host,
                (corpus["site_share"][bounds[i] : bounds[i + 1]], pages[bounds[i]] if sizes[i] else 0.0),
            )
            for i, d in enumerate(docs_lines)
        ]
        p_lines: list[np.ndarray | None] = [None] * len(items)
        x = None
        if self.line_model is not None or self.page_model is not None:
            x, p_lines = self._score_lines(all_lines, docs_lines, removed, scanned, corpus)
        for rule in self._after_model:
            for d, rem in zip(docs_lines, removed, strict=True):
                left = [j for j, r in enumerate(rem) if r is None]
                for k in self._block_hits(rule, [d.lines[j] for j in left], d.host):
                    rem[left[k]] = rule.id
        analyses, views, keeps = [], [], []
        for i, lines in enumerate(all_lines):
            flags = [r is None for r in removed[i]]
            keep = np.array(flags, dtype=bool)
            kept = "\n".join(line for line, k in zip(lines, flags, strict=True) if k)
            views.append(DocView(kept))
            keeps.append(keep)
            tmpl = corpus["template_pages"][bounds[i] : bounds[i + 1]]
            metrics = page_metrics(lines, keep, tmpl, self.site_pages)
            analyses.append(Analysis(lines, removed[i], kept, [], p_lines[i], metrics))
        if self.page_model is not None and x is not None:
            judged = [i for i, a in enumerate(analyses) if a.text]
            if judged:
                doc_of = np.repeat(np.arange(len(all_lines)), [len(lines) for lines in all_lines])
                p_all = np.concatenate([p for p in p_lines if p is not None])
                rows = page_feature_matrix(
                    self._col, x, p_all, np.concatenate(keeps), doc_of, views, self.rules.words, self.word_lists
                )
                for i, score in zip(judged, self.page_model.predict(rows[judged]), strict=True):
                    analyses[i].page["page_model"] = float(score)
        for a, view, d in zip(analyses, views, docs_lines, strict=True):
            a.verdicts = self.judge(view, all_verdicts, a.page)
            if self._last and self.remove_last(d.lines, a.removed_by):
                a.text = "\n".join(line for line, r in zip(a.lines, a.removed_by, strict=True) if r is None)
        return analyses

    def _score_lines(
        self,
        all_lines: list[list[str]],
        docs_lines: list[DocLines],
        removed: list[list[str | None]],
        scanned: Scanned,
        corpus: dict[str, np.ndarray],
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """P(boilerplate) of every line left by the rules; the line model removes those above threshold.
        Without a line model, P is 1 for lines a rule removed and 0 for the rest."""
        codes = self._codes
        for d, rem in zip(docs_lines, removed, strict=True):
            d.rules = [codes[r] if r else 0 for r in rem]
        flat_removed = np.array([r is not None for rem in removed for r in rem], dtype=bool).reshape(scanned.lens.size)
        todo = np.flatnonzero(~flat_removed)
        lexical = None
        if self.lexical is not None:
            lexical = np.zeros(flat_removed.size, dtype=np.float32)
            lexical[todo] = self.lexical.score(scanned.cp, scanned.starts, scanned.lens, todo)
        x = line_features(docs_lines, self.keywords, self.stats, scanned, corpus, lexical)
        p = np.ones(x.shape[0])
        p[todo] = self.line_model.predict(x[todo]) if self.line_model is not None else 0.0
        if self.line_rule is not None and self.line_rule.params.get("needs_boilerplate"):
            p[~flat_removed & ~with_boilerplate(x[:, self._col["site_share"]], flat_removed, removed)] = 0.0
        params = self.line_rule.params if self.line_rule is not None else {}
        threshold, pieces = float(params.get("threshold", 1.0)), int(params.get("sentence_pieces", 0))
        continues = params.get("continues")
        rule_id = self.line_rule.id if self.line_rule is not None else ""
        out: list[np.ndarray | None] = []
        offset = 0
        for lines, rem in zip(all_lines, removed, strict=True):
            pd = p[offset : offset + len(rem)]
            free = np.array([r is None for r in rem], dtype=bool).reshape(len(rem))
            for j in np.flatnonzero(model_removals(lines, free, pd, threshold, pieces, continues)):
                rem[j] = rule_id
            out.append(pd)
            offset += len(rem)
        return x, out

    def judge(
        self, view: DocView | str, all_verdicts: bool = False, page: dict[str, float] | None = None
    ) -> list[Verdict]:
        """Document rules in file order; stops at the first failure unless all_verdicts. Page metrics
        (`page`) come from the line analysis; a rule whose page metric is missing is skipped."""
        if isinstance(view, str):
            view = DocView(view)
        page = page or {}
        verdicts = []
        for rule in self.rules.doc_rules:
            if not rule.applies(view.text):
                continue
            if rule.when is not None and not any(self._holds(view, page, c) for c in rule.when):
                continue
            if rule.metric in PAGE_METRICS:
                value = page.get(rule.metric)
                if value is None:
                    continue
            else:
                value = self.value(view, rule)
            verdicts.append(Verdict(rule, value, rule.fails(value)))
            if verdicts[-1].failed and not all_verdicts:
                break
        return verdicts

    @staticmethod
    def _holds(view: DocView, page: dict[str, float], condition: tuple[str, float | None, float | None]) -> bool:
        metric, lo, hi = condition
        found = page.get(metric) if metric in PAGE_METRICS else view.value(metric)
        return found is not None and (lo is None or found >= lo) and (hi is None or found <= hi)

    def value(self, view: DocView, rule: DocRule) -> float:
        if not rule.words:
            return view.value(rule.metric)
        words = self.rules.words
        if rule.metric == "word_line_ratio":
            lines = [line for line in view.lines if line.strip()]
            return sum(words.match(line)[rule.words].hits > 0 for line in lines) / len(lines) if lines else 0.0
        if view.words is None:
            view.words = words.match(view.text)
        found = view.words[rule.words]
        if rule.metric == "word_char_ratio":
            return found.chars / len(view.text) if view.text else 0.0
        return found.hits * 1000 / len(view.text) if view.text else 0.0


SITE_REPEATED = 0.5  # a line on at least half of its site's pages is page furniture


# How a piece of a sentence ends when the next line goes on with it: a noun (a name, a term, a link
# text: kanji, katakana, Latin, digits, a closing bracket) before a particle, or a particle, a comma
# or an open bracket that leaves the clause unfinished.
_NOUN_END = re.compile(r"[一-龯々〆ァ-ヶーA-Za-z0-9)\]」』】]$")
_OPEN_END = re.compile(r"(?:[、,『「(【〔\[“をがはにでともやの]|から|まで|より|など)$")


def model_removals(
    lines: list[str],
    free: np.ndarray,
    p: np.ndarray,
    threshold: float,
    pieces: int,
    continues: re.Pattern[str] | None = None,
) -> np.ndarray:
    """The lines the line model removes: lines no rule removed, scored above the threshold, except
    pieces of a sentence. Web pages put each HTML text node on a line of its own, so an inline link or
    term splits a sentence, and removing the piece leaves kept lines that start or stop mid-sentence.
    A removed line of at most `pieces` characters is kept when
    - it sits between two kept lines and the one before it does not end a sentence;
    - (with `continues`) it leaves the clause open (ends with a particle, a comma or an open bracket)
      and a kept line follows, or it ends with a noun and the kept line after it continues it (starts
      with a particle or a closing bracket: `continues`);
    - (with `continues`) the kept line before it leaves the clause open (ends with a particle, a
      comma or an open bracket), or does not end a sentence and this line continues it.
    Keeping one piece can make its neighbour a piece too, so this runs until nothing changes."""
    out = free & (p > threshold)
    candidates = [j for j in np.flatnonzero(out).tolist() if len(lines[j].strip()) <= pieces] if pieces else []
    if not candidates:
        return out
    # the line tests, only for the candidates and their neighbours (the rest of the page is not looked at)
    near = sorted({k for j in candidates for k in (j - 1, j, j + 1) if 0 <= k < len(lines)})
    stripped = {k: lines[k].strip() for k in near}
    ends = {k: s.endswith(LINE_END_CHARS) for k, s in stripped.items()}
    opens = {k: not ends[k] and _OPEN_END.search(s) is not None for k, s in stripped.items()}
    goes_on = {k: continues is not None and continues.match(s) is not None for k, s in stripped.items()}
    glue = continues is not None
    n = len(lines)
    changed = True
    while changed:
        changed = False
        kept = free & ~out
        for j in candidates:
            if not out[j]:
                continue
            before = j > 0 and kept[j - 1]
            after = j + 1 < n and kept[j + 1]
            inside = before and after and not ends[j - 1]
            term = after and goes_on[j + 1] and not ends[j] and _NOUN_END.search(stripped[j]) is not None
            head = glue and after and (opens[j] or term)
            tail = glue and before and (opens[j - 1] or (not ends[j - 1] and goes_on[j]))
            if inside or head or tail:
                out[j] = False
                kept[j] = True
                changed = True
    return out


def with_boilerplate(site_share: np.ndarray, flat_removed: np.ndarray, removed: list[list[str | None]]) -> np.ndarray:
    """Per line, whether its document shows page furniture: a line a rule removed, or a line repeated
    on half its site's pages. The line model learned crawl pages, which always do; on a document
    without any (an encyclopedia lead, a clean article) it has nothing to go on and abstains."""
    sizes = [len(r) for r in removed]
    doc_of = np.repeat(np.arange(len(sizes)), sizes)
    evidence = np.bincount(doc_of, weights=(flat_removed | (site_share >= SITE_REPEATED)), minlength=len(sizes))
    return (evidence > 0)[doc_of]


PROSE_LINE_CHARS = 40  # a kept line this long counts as prose even without a sentence ending
PROSE_PIECE_CHARS = 8  # a shorter line counts when it is a piece of a wrapped sentence (is_wrapped_prose)


def page_metrics(
    lines: list[str], keep: np.ndarray, template_pages: np.ndarray | None = None, site_pages: int = 0
) -> dict[str, float]:
    """How much of the page the line rules removed, how much prose is left, and how many mis-decoded
    characters the whole page held (removed lines too: `mojibake`); with `template_pages`
    (per line, the site's distinct pages sharing its template) and `site_pages` > 0, the share of the
    kept characters whose template is on at least `site_pages` pages of the site, and the prose
    characters left outside such lines (the page's own prose)."""
    total = removed = prose = templated = templated_prose = 0
    shared = (template_pages >= site_pages).tolist() if template_pages is not None and site_pages else None
    for i, (line, k) in enumerate(zip(lines, keep.tolist(), strict=True)):
        stripped = line.strip()
        n = len(stripped)
        total += n
        if not k:
            removed += n
            continue
        is_prose = n >= PROSE_LINE_CHARS or stripped.endswith(LINE_END_CHARS)
        is_prose = is_prose or (n >= PROSE_PIECE_CHARS and is_wrapped_prose(stripped))
        prose += n if is_prose else 0
        if shared is not None and shared[i]:
            templated += n
            templated_prose += n if is_prose else 0
    out = {
        "boilerplate_share": removed / total if total else 0.0,
        "prose_chars": float(prose),
        "mojibake_chars": float(mojibake_chars("\n".join(lines))),
    }
    if shared is not None:
        kept = total - removed
        out["templated_share"] = templated / kept if kept else 0.0
        out["own_prose_chars"] = float(prose - templated_prose)
    return out


_UNLIMITED = 1 << 60
_MEMO_SIZE = 1 << 20
_UNSEEN = "\0unseen"  # a memo miss (None is a memoised "no rule")


def _is_menu_like(s: str, max_chars: int) -> bool:
    return len(s) <= max_chars and not s.endswith(LINE_END_CHARS) and not _KAOMOJI_END.search(s)


_PARTICLE = re.compile(r"[一-龯々ァ-ヶー][をがはにでとものへ]")
_HIRA = re.compile(r"[ぁ-ん]")
_PERIOD_ENDS = tuple(e for e in LINE_END_CHARS if e not in ("!", "?", "！", "？"))
_SOFT_ENDS = ("!", "?", "♪", "☆", "〜", "ー", "…", "、", ")")
# a face after Japanese text closes a casual sentence ("…ですが。(^^;", "楽しみ(^^)", "m(__)m"); menu items
# and breadcrumbs never end with one. A face has ^ _ ; ∀ ω ▽ ≧ in brackets; "(新築・中古)" is no face.
_KAOMOJI_END = re.compile(
    r"[ぁ-んァ-ヶ一-龯。、!?！？ー〜♪]\s*(?:[(（](?=[^)）]*[\^＾∀ω_;；´｀≧≦▽])[^()（）]{1,8}[)）]?|m\(_+\)m)[;；wｗ]*$"
)
# a predicate ending (polite or plain sentence-final forms), whatever marks follow it
_PREDICATE_END = re.compile(
    r"(?:ます|ました|ません|です|でした|でしょう|ましょう|だよ|だね|よね|てね|ですね|ますね|ください)[^ぁ-んァ-ヶ一-龯]*$"
)


@functools.lru_cache(maxsize=1 << 18)  # menu items recur on every page of a site
def is_wrapped_prose(s: str) -> bool:
    """A short line that is a piece of a sentence, not a menu item: it ends like a sentence, or with a
    comma, or it has the grammar of one (particles after words) and ends softly (!, ♪, kana).
    Menu items ending in ? or ! ("WTAとは?") have no such grammar and stay menu-like."""
    if s.endswith(_PERIOD_ENDS) or s.endswith("、") or _PREDICATE_END.search(s) or _KAOMOJI_END.search(s):
        return True
    particles = len(_PARTICLE.findall(s))
    soft = s.endswith(_SOFT_ENDS) or bool(_HIRA.fullmatch(s[-1:]))
    return particles >= 2 and soft and len(_HIRA.findall(s)) >= 0.4 * len(s)


def page_repeats(lines: list[str], min_chars: int) -> list[int]:
    """Later copies of a line of `min_chars` or more already seen higher up the page (the first copy
    stays): a site blurb under every teaser, a notice repeated down a page."""
    seen: set[str] = set()
    hits = []
    for i, s in enumerate(lines):
        if len(s) >= min_chars:
            if s in seen:
                hits.append(i)
            seen.add(s)
    return hits


def short_runs(lines: list[str], min_run: int, max_chars: int) -> list[int]:
    """Runs of at least `min_run` consecutive short lines that are not pieces of sentences: menus,
    tag clouds, spec tables, calendars. Prose, even wrapped into short lines, breaks the run."""
    menu = [len(s) <= max_chars and not is_wrapped_prose(s) for s in lines]
    hits: list[int] = []
    start = None
    for i, flag in enumerate([*menu, False]):
        if flag:
            if start is None:
                start = i
        elif start is not None:
            if i - start >= min_run:
                hits.extend(range(start, i))
            start = None
    return hits


def separator_trails(lines: list[str], separators: str, lead_separators: str, max_chars: int) -> list[int]:
    """Breadcrumbs written one item per line: a line that is only a separator (`>`), or an arrow-like
    separator, a space and a short item (`> 審議会`), removes itself and the short items around it.
    Bullets such as `- 砂糖 大さじ1` are not trails: `-` only counts on a line of its own. A forum reply
    quoting with `> ` wraps sentences: a `> ` line within two lines of a quoted sentence (a quoted line
    too long for an item or with a sentence's grammar) is a quote, and a neighbour with a sentence's
    grammar is no item, so the poster's own lines around a quote stay."""
    hits: list[int] = []
    starts = separators + lead_separators
    for i, s in enumerate(lines):
        if not s or s[0] not in starts:  # the fast path: almost no line starts with a separator
            continue
        lone = len(s) == 1 and s in separators
        lead = (
            len(s) > 2
            and s[0] in lead_separators
            and s[1] == " "
            and _is_menu_like(s, max_chars)
            and not _near_quoted_sentence(lines, i, max_chars)
        )
        if not (lone or lead):
            continue
        hits.append(i)
        hits.extend(j for j in (i - 1, i + 1) if 0 <= j < len(lines) and _is_trail_item(lines[j], max_chars))
    return hits


def _near_quoted_sentence(lines: list[str], i: int, max_chars: int) -> bool:
    """A `> ` line within two lines of line i is too long for an item, ends like a sentence or has
    a sentence's grammar: line i is part of a forum quote."""
    return any(
        s.startswith("> ") and (not _is_menu_like(s, max_chars) or is_wrapped_prose(s[2:]))
        for s in lines[max(0, i - 2) : i + 3]
    )


def _is_trail_item(s: str, max_chars: int) -> bool:
    return _is_menu_like(s, max_chars) and not is_wrapped_prose(s)
