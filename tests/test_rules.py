"""Every rule's own examples, and the rule loader's errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cleaning.errors import CleaningError
from cleaning.rules.engine import RulesEngine
from cleaning.rules.examples import Example, fires, iter_examples
from cleaning.rules.ruleset import DEFAULT_RULES_DIR, load_rules

RULES = load_rules()
ENGINE = RulesEngine(RULES)
EXAMPLES = list(iter_examples(RULES))
TEXTS = yaml.safe_load((Path(__file__).parent / "data" / "site_texts.yaml").read_text(encoding="utf-8"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.label for e in EXAMPLES])
def test_rule_example(example: Example) -> None:
    fired, measured = fires(RULES, ENGINE, example)
    assert fired == example.expected, f"{example.rule_id} on {example.text[:80]!r}: {measured}"


def test_every_rule_has_both_kinds_of_example() -> None:
    for rule_id in {e.rule_id for e in EXAMPLES}:
        kinds = {e.expected for e in EXAMPLES if e.rule_id == rule_id}
        assert kinds == {True, False}, rule_id


def copy_rules(tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(DEFAULT_RULES_DIR, tmp_path / "rules"))


def test_a_new_pattern_rule_needs_no_code(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    text = (rules_dir / "lines.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "line_rules:\n",
        "line_rules:\n  - id: test.weather\n    description: test rule\n    pattern: '天気予報.*'\n"
        "    examples: {match: [天気予報です], no_match: [今日の天気]}\n",
        1,
    )
    (rules_dir / "lines.yaml").write_text(text, encoding="utf-8")
    engine = RulesEngine(load_rules(rules_dir))
    assert engine.classify(["天気予報の時間です", "今日は晴れです。"], None) == ["test.weather", None]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("pattern: '(?:本文へ", "pattern: '(?:本文へ("), "bad pattern"),
        (("  - id: widget.login\n", "  - id: widget.share\n"), "rule ids used twice"),
        (("block: {type: short_run, min_run: 6, max_chars: 20}", "block: {type: short_run, min_run: 6}"), "takes"),
        (
            ("block: {type: short_run, min_run: 6, max_chars: 20}", "after_model: true\n    block: {type: short_run}"),
            "after_model is true or false, for lines and pattern rules",
        ),
    ],
)
def test_broken_rule_files_are_clear_errors(tmp_path: Path, edit: tuple[str, str], message: str) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "lines.yaml"
    text = path.read_text(encoding="utf-8")
    assert edit[0] in text
    path.write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(CleaningError, match=message):
        load_rules(rules_dir)


def test_unknown_metric_and_missing_examples(tmp_path: Path) -> None:
    rules_dir = copy_rules(tmp_path)
    path = rules_dir / "documents.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("metric: chars\n", "metric: charz\n", 1))
    with pytest.raises(CleaningError, match="unknown metric 'charz'"):
        load_rules(rules_dir)


def test_template_rules_must_agree_on_their_site_pages() -> None:
    """The templated metrics are measured once per page, for one page count."""
    with pytest.raises(CleaningError, match="must agree on site_pages"):
        load_rules(
            overrides={
                "doc.templated": {"site_pages": 4},
                "doc.too_short": {"metric": "templated_share", "site_pages": 3},
            }
        )


def test_disable_and_override() -> None:
    rules = load_rules(disable=["menu.block"], overrides={"doc.too_short": {"min": 5}})
    assert "menu.block" not in {r.id for r in rules.line_rules}
    assert next(r for r in rules.doc_rules if r.id == "doc.too_short").min == 5
    with pytest.raises(CleaningError, match="unknown rule ids"):
        load_rules(disable=["no.such.rule"])


def test_a_piece_of_a_sentence_between_kept_lines_stays() -> None:
    import numpy as np

    from cleaning.rules.engine import model_removals

    lines = ["詳しくは", "こちら", "をご覧ください。", "関連記事の見出し", "本文の続きです。"]
    free = np.ones(5, dtype=bool)
    p = np.array([0.1, 0.9, 0.1, 0.9, 0.1])
    assert model_removals(lines, free, p, 0.5, 30).tolist() == [False, False, False, True, False], (
        "a link split out of a sentence stays; a line after a finished sentence goes"
    )
    assert model_removals(lines, free, p, 0.5, 0).tolist() == [False, True, False, True, False]
    assert model_removals(lines, free, p, 0.5, 2).tolist() == [False, True, False, True, False], "too long"


def test_pieces_of_a_split_sentence_stay() -> None:
    """A link or term the line model scores as boilerplate stays when it is a piece of a kept sentence
    (before a line that continues it, after a line left open), so no kept line starts mid-sentence;
    a line before a sentence opener (ところで) or after a finished sentence still goes."""
    import numpy as np

    from cleaning.rules.engine import model_removals

    rule = next(r for r in RULES.line_rules if r.block == "line_model")
    rows = TEXTS["split_sentence"]
    lines, p, expected = [r[0] for r in rows], np.array([r[1] for r in rows]), [r[2] for r in rows]
    free = np.ones(len(lines), dtype=bool)
    assert model_removals(lines, free, p, 0.5, 30, rule.params["continues"]).tolist() == expected
    without = model_removals(lines, free, p, 0.5, 30).tolist()
    assert without[1] and without[5] and without[8], "without `continues` only lines between kept lines stay"
    ended = ["見出しです。", "の桜並木が満開になった。"]
    assert model_removals(ended, np.ones(2, dtype=bool), np.array([0.9, 0.1]), 0.5, 30, rule.params["continues"])[0]


def test_a_line_repeated_down_a_page_keeps_its_first_copy_and_the_page_its_prose() -> None:
    """A blurb under every teaser: later copies go, the first stays; short labels may repeat; and with
    the copies gone the duplicate-line document rules judge the page's own text."""
    engine = RulesEngine(RULES, models=False)
    blurb = "このサイトは眼と眼鏡の役に立つ情報をお届けするポータルサイトです。"
    prose = [
        "遠近両用レンズは、慣れるまでに一週間ほどかかると言われています。",
        "最初は階段の上り下りで足元が見えにくく感じる方が多いようです。",
        "店頭ではフレームの角度を細かく調整して、視線の移動が少なくなるようにしています。",
    ]
    lines = ["聞き手:", prose[0], blurb, "聞き手:", prose[1], blurb, prose[2], blurb, blurb, blurb]
    analysis = engine.analyse("\n".join(lines), None, all_verdicts=True)
    assert [i for i, r in enumerate(analysis.removed_by) if r == "page.repeated"] == [5, 7, 8, 9]
    assert analysis.text.split("\n") == ["聞き手:", prose[0], blurb, "聞き手:", prose[1], prose[2]]
    failed = {v.rule.id for v in analysis.verdicts if v.failed}
    assert not failed & {"doc.dup_lines", "doc.dup_line_chars", "doc.dup_5gram"}, failed
    without = RulesEngine(load_rules(disable=["page.repeated"]), models=False)
    failed = {v.rule.id for v in without.analyse("\n".join(lines), None, all_verdicts=True).verdicts if v.failed}
    assert failed & {"doc.dup_lines", "doc.dup_line_chars", "doc.dup_5gram"}, "the copies made the page a reject"


def test_prose_wrapped_over_short_lines_counts_as_prose_on_a_page_of_menus() -> None:
    """A blog post written in short lines without 。 keeps its page (doc.little_content counts the
    pieces of its sentences); the same menus around a one-line caption do not."""
    engine = RulesEngine(RULES, models=False)
    menu = ["ホーム", "ブログ", "プロフィール", "カテゴリー", "アーカイブ", "お問い合わせ", "サイトマップ", "リンク"]
    post = [
        "今日は車検の見積もりをもらいに、",
        "近所のディーラーまで行ってきました。",
        "担当の人がとても丁寧に説明してくれて、",
        "思っていたよりずっと安く済みそうです",
        "帰りに寄ったパン屋さんのクロワッサンが",
        "びっくりするくらい美味しかったので、",
        "また今度ゆっくり買いに行こうと思います",
        "来月は家族で温泉に行く予定なので、",
        "それまでに車をきれいにしておきたいと思っています",
        "温泉のあとは海沿いの道をドライブして、",
        "夕日を見ながら帰ってくるつもりです",
        "子どもたちも今から楽しみにしていて、",
        "毎日のように旅行の話をしています",
        "宿は昔ながらの小さな旅館にしたので、",
        "部屋からの眺めも楽しみのひとつです",
        "おみやげは何にしようか迷っています",
    ]
    analysis = engine.analyse("\n".join(menu * 9 + post), None, all_verdicts=True)
    little = next(v for v in analysis.verdicts if v.rule.id == "doc.little_content")
    assert analysis.page["boilerplate_share"] >= 0.5 and not little.failed, analysis.page
    caption = engine.analyse("\n".join([*menu * 9, "写真はイメージです"]), None, all_verdicts=True)
    assert any(v.rule.id == "doc.little_content" and v.failed for v in caption.verdicts), caption.page


def test_doorway_pages_are_templated_and_an_article_sharing_a_bio_is_not() -> None:
    """doc.templated counts, corpus-wide, the distinct pages of a site that share a line's template."""
    from cleaning.rules.linestats import stats_for

    door = [TEXTS["doorway"].replace("{place}", p) for p in TEXTS["places"]]
    rows = [{"text": t, "url": f"https://door.example.jp/{i}"} for i, t in enumerate(door)]
    own, bio = TEXTS["articles"], TEXTS["bio"]
    # the bio on 3 of the blog's 7 pages: under site.repeated's half, so it stays and is templated
    pairs = [(0, 1), (1, 2), (2, 0), (1, 0), (2, 1), (0, 2), (0, 0)]  # pages of their own, one line each
    texts = [own[a] + own[b] + (f"\n{bio}" if i < 3 else "") for i, (a, b) in enumerate(pairs)]
    rows += [{"text": t, "url": f"https://blog.example.jp/{i}"} for i, t in enumerate(texts)]
    engine = RulesEngine(RULES, stats_for(rows), models=False)
    page, article = engine.analyse(rows[0]["text"], rows[0]["url"]), engine.analyse(rows[3]["text"], rows[3]["url"])
    assert [v.rule.id for v in page.failed] == ["doc.templated"]
    assert page.page["templated_share"] == 1.0 and page.page["own_prose_chars"] == 0
    assert not article.failed and article.page["templated_share"] > 0.3, article.page
    alone = RulesEngine(RULES, stats_for(rows[:2]), models=False).analyse(rows[0]["text"], rows[0]["url"])
    assert not alone.failed and alone.page["templated_share"] == 0.0, "two pages are not a template"


def test_a_query_slotted_into_many_sentences_is_keyword_stuffing_and_a_quoted_title_is_not() -> None:
    """doc.keyword_stuffing counts one bare spaced keyword in long sentences: spun text repeats it in
    every sentence; a quoted title, a word without a space, a product name or a short list line do not count."""
    from cleaning.rules.metrics import DocView

    engine = RulesEngine(RULES, models=False)

    def verdict(text: str) -> tuple[float, bool]:
        verdicts = engine.analyse(text, None, all_verdicts=True).verdicts
        rule = next(v for v in verdicts if v.rule.id == "doc.keyword_stuffing")
        return DocView(text).value("spaced_keyword_repeats"), rule.failed

    spun = "\n".join(TEXTS["spun"])
    for kw in TEXTS["spun_keywords"]["counted"]:
        assert verdict(spun.replace("{kw}", kw)) == (6, True), kw
        assert verdict("\n".join(TEXTS["spun"][:5]).replace("{kw}", kw)) == (5, False), kw
    for kw in TEXTS["spun_keywords"]["not_counted"]:
        assert verdict(spun.replace("{kw}", kw)) == (0, False), kw
    press = "\n".join([TEXTS["press_line"].replace("{kw}", "霞野市 温泉")] * 30)
    assert verdict(press) == (0, False)


def test_a_face_closes_a_casual_sentence_so_forum_replies_are_not_menus_or_breadcrumbs() -> None:
    """Replies quoting with `> ` and ending with a face ((^^; m(__)m) are sentences: the quote marker
    is not a breadcrumb separator for them, and six such short lines are not a menu. Bracketed menu
    items such as マンション(新築・中古) are no faces and stay menu items."""
    from cleaning.rules.engine import separator_trails, short_runs

    reply = ["それは困りましたね(^^;", "> 昨日から動かない", "再起動してみてね m(__)m"]
    assert separator_trails(reply, ">»›→/|-・", ">»›→", 40) == [1], "only the quoted fragment itself"
    diary = ["朝から雨(^^;", "洗濯物が乾かない(;_;)", "映画は見られた(^^)"]
    diary += ["久しぶりに泣いた(>_<)", "明日は晴れるかな", "おやすみ(-_-)"]
    assert short_runs(diary, 6, 20) == []
    menu = ["マンション(新築・中古)", "一戸建て(新築・中古)", "土地(売地)"]
    menu += ["給付・助成(安心・安全)", "会社概要", "採用情報"]
    assert short_runs(menu, 6, 20) == list(range(6))


def test_a_page_that_held_mojibake_is_rejected_even_after_its_garbled_lines_are_removed() -> None:
    """Japanese read with the wrong charset (UTF-8 or EUC-JP as Latin-1) counts one per mis-decoded
    character, over the raw page: the line rules drop the garbled lines, doc.mojibake still rejects
    the page. A garbled name or two and accented Latin (café, informação) do not count against it."""
    from cleaning.document import Doc
    from cleaning.rules.mojibake import mojibake_chars
    from cleaning.stages.rules import Rules, RulesConfig

    utf8 = [s.encode("utf-8").decode("latin-1") for s in TEXTS["garbled"]]
    euc = [s.encode("euc-jp").decode("latin-1") for s in TEXTS["garbled"]]
    assert mojibake_chars(utf8[0]) == len(TEXTS["garbled"][0])  # every character's lead byte
    kana = sum(len(re.findall(r"[ぁ-んァ-ヶー。、]", s)) for s in TEXTS["garbled"])
    assert mojibake_chars("\n".join(euc)) == kana  # EUC-JP: the kana and symbol rows (ー、。)
    assert mojibake_chars("Café São Paulo の informação、crème brûlée、Pokémon") == 0

    stage = Rules(RulesConfig())
    prose = "\n".join(TEXTS["articles"])
    broken = Doc("broken", "\n".join([*utf8, *euc, prose]))
    named = Doc("named", "\n".join(["by " + utf8[0][:12], "Café São Paulo の informação", prose]))
    result = stage.process([broken, named])
    assert [r.reason for r in result.rejected] == ["doc.mojibake"]
    assert [d.id for d in result.kept] == ["named"]
    assert prose in result.kept[0].text


def test_a_rule_applied_after_the_model_removes_its_own_lines_and_changes_no_decision() -> None:
    """meta.date runs last (`after_model: true`), on the text every decision was made on: with it or
    without it the line model's scores, the page metrics and every document verdict are the same, and
    only its date lines leave the output. A page left with nothing but dates is rejected as all lines
    removed."""
    import numpy as np

    from cleaning.document import Doc
    from cleaning.stages.rules import Rules, RulesConfig

    with_rule, without = RulesEngine(RULES), RulesEngine(load_rules(disable=["meta.date"]))
    dates = ["2023年6月6日", "[2011-04-10-1]", "7月29日(月)"]
    arts = TEXTS["articles"]
    menu = ["ホーム", "会社概要", "サービス", "採用情報", "お問い合わせ", "アクセス"]
    for lines in (
        [*menu, arts[0], dates[0], arts[1], dates[1], arts[2], dates[2], "© 2023 山中工務店"],  # the model acts
        [arts[0], dates[0], arts[1], dates[1], arts[2], dates[2]],  # no page furniture: the model abstains
    ):
        a = with_rule.analyse("\n".join(lines), None, all_verdicts=True)
        b = without.analyse("\n".join(lines), None, all_verdicts=True)
        assert np.array_equal(a.p_line, b.p_line) and a.page == b.page
        assert [(v.rule.id, v.value) for v in a.verdicts] == [(v.rule.id, v.value) for v in b.verdicts]
        fired = [j for j, (x, y) in enumerate(zip(a.removed_by, b.removed_by, strict=True)) if x != y]
        assert all(a.removed_by[j] == "meta.date" and b.removed_by[j] is None for j in fired)
        assert a.text == "\n".join(line for line in b.text.split("\n") if line not in dates)
    assert [lines[j] for j in fired] == dates, "on the clean page the dates are kept by all else"
    only_dates = Rules(RulesConfig()).process([Doc("d", "2023年6月6日\n2023年6月7日")])
    assert [r.reason for r in only_dates.rejected] == ["rules.all_lines_removed"]


def test_a_quoted_piece_of_a_sentence_is_no_breadcrumb_item() -> None:
    """A forum reply quotes with `> ` and wraps its sentences into short lines: a quoted piece with a
    sentence's grammar, and the poster's own wrapped line next to it, are no breadcrumb items. A
    breadcrumb's `> item` and the item before it still go."""
    from cleaning.rules.engine import separator_trails

    reply = ["それならメモリを減らしてみたら", "> 設定を変えてもメニューが出ないので", "困っています。"]
    assert separator_trails(reply, ">»›→/|-・", ">»›→", 40) == []
    quoted = ["> 画面を何度タップしても", "と書かれていますが、うちでは", "> 動きません"]
    assert separator_trails(quoted, ">»›→/|-・", ">»›→", 40) == []
    crumb = ["イベント情報", "> プール開き", "夏のプールが今年も始まりました。"]
    assert separator_trails(crumb, ">»›→/|-・", ">»›→", 40) == [1, 0]
