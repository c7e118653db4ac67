"""Sentiment, watchlist tags and question intents on plain values, and the labelled set."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from livectl.opinion.analysis import analyse
from livectl.opinion.keywords import Watchlist, default_watchlist
from livectl.opinion.sentiment import label_of

COMMENTS = Path(__file__).parent / "data" / "comments.tsv"


def test_the_labelled_comments_score_with_negative_f1_of_at_least_0_85() -> None:
    with COMMENTS.open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table, delimiter="\t"))
    assert len(rows) >= 500
    watchlist = default_watchlist()
    predicted = [label_of(analyse(row["text"], watchlist).sentiment) for row in rows]
    expected = [row["label"] for row in rows]
    pairs = list(zip(predicted, expected, strict=True))
    true_pos = sum(p == e == "negative" for p, e in pairs)
    false_pos = sum(p == "negative" != e for p, e in pairs)
    false_neg = sum(e == "negative" != p for p, e in pairs)
    accuracy = sum(p == e for p, e in pairs) / len(rows)
    precision = true_pos / (true_pos + false_pos)
    recall = true_pos / (true_pos + false_neg)
    f1 = 2 * precision * recall / (precision + recall)
    tagged = [row for row in rows if row["category"]]
    tag_recall = sum(
        row["category"] in analyse(row["text"], watchlist).tags for row in tagged
    ) / len(tagged)
    untagged_clean = sum(
        not analyse(row["text"], watchlist).tags for row in rows if not row["category"]
    ) / sum(not row["category"] for row in rows)
    print(
        f"\n{len(rows)} comments: accuracy {accuracy:.3f}; negative precision {precision:.3f} "
        f"recall {recall:.3f} F1 {f1:.3f}; category recall {tag_recall:.3f}, "
        f"no tag where none is meant {untagged_clean:.3f}"
    )
    assert f1 >= 0.85
    assert tag_recall >= 0.85
    assert untagged_clean >= 0.95


@pytest.mark.parametrize(
    "text", ["不是假货吧?", "没有退款的必要", "不是骗人的吧？", "会起球吗", "可以退货吗"]
)
def test_negated_and_asking_forms_are_not_complaints(text: str) -> None:
    analysis = analyse(text, default_watchlist())
    assert analysis.tags == ()
    assert not analysis.negative


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("假 货", "counterfeit"),
        ("假!货", "counterfeit"),
        ("假貨", "counterfeit"),
        ("我要退貨", "refund"),
        ("投 诉", "complaint"),
        ("割韭菜", "fraud"),
        ("衣服起球了", "quality"),
        ("怎么还不发货?", "logistics"),
    ],
)
def test_complaints_and_their_evasions_are_tagged_and_negative(text: str, category: str) -> None:
    analysis = analyse(text, default_watchlist())
    assert category in analysis.tags
    assert analysis.negative


def test_negation_intensity_and_contrast_move_the_score() -> None:
    watchlist = default_watchlist()

    def score(text: str) -> float:
        return analyse(text, watchlist).sentiment

    assert score("好看") > 0 > score("不好看")
    assert score("太贵了") < score("有点贵") < 0
    assert score("有点贵但是真的好用") > 0 > score("好看是好看，但是质量很差")
    assert -1.0 <= score("垃圾垃圾骗子假货投诉退款😡😡") <= score("好") <= 1.0


def test_a_room_watchlist_matches_its_own_words_folded() -> None:
    watchlist = Watchlist({"refund": ["退 款"], "custom": ["色差"]})
    assert analyse("色差好大", watchlist).tags == ("custom",)
    assert analyse("退款", watchlist).tags == ("refund",)
    assert analyse("假货", watchlist).tags == ()


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("这个多少钱", "price"),
        ("160斤穿什么码", "size"),
        ("什么时候发货?", "shipping"),
        ("怎么买啊", "how_to_buy"),
        ("求链接", "link"),
    ],
)
def test_questions_are_grouped_by_intent(text: str, intent: str) -> None:
    assert intent in analyse(text, default_watchlist()).intents


def test_statements_have_no_question_intent() -> None:
    assert analyse("价格太贵了", default_watchlist()).intents == ()
