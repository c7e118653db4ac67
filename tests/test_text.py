"""Normalisation folds the ways viewers type a word into one spelling."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livectl.kit.text import CHANGED_BELOW, fold, fold_sources, normalise, screen


@pytest.mark.parametrize(
    "typed",
    ["假货", "假 货", "假!货", "假貨", "假假假货", "假　货", "假-货~", "「假」『货』"],
)
def test_evasions_of_one_word_read_alike(typed: str) -> None:
    assert fold(typed) == "假货"


def test_full_width_letters_and_digits_become_half_width_lower_case() -> None:
    assert fold("ＡＢＣ１２３ Ok") == "abc123ok"


def test_digits_are_never_collapsed() -> None:
    assert fold("1000元包邮") == "1000元包邮"


def test_emoji_are_kept_apart_from_words() -> None:
    result = normalise("太好了👍👍真的😍")
    assert result.text == "太好了真的"
    assert result.emoji == ("👍", "👍", "😍")


def test_text_without_words_folds_to_nothing() -> None:
    assert normalise("！！！ ？？").text == ""


def test_no_character_past_the_scanned_planes_folds_to_another() -> None:
    # fold_sources scans only the code points below CHANGED_BELOW for characters that NFKC
    # or case folding change; a Unicode update that changes one past it must move the bound.
    assert not [
        hex(code_point)
        for code_point in range(CHANGED_BELOW, sys.maxunicode + 1)
        if unicodedata.normalize("NFKC", chr(code_point)).casefold() != chr(code_point)
    ]


def test_the_sources_of_a_character_are_every_way_to_type_it() -> None:
    assert fold_sources("红") == {"红", "紅"}
    assert {"口", "⼝"} <= fold_sources("口")  # ⼝ is the Kangxi radical
    assert {"s", "S", "ｓ", "Ｓ", "ß", "ﬆ"} <= fold_sources("s")
    assert all("s" in fold(source) for source in fold_sources("s"))


def test_every_character_is_a_source_of_what_it_folds_into() -> None:
    # Past CHANGED_BELOW every character folds to itself or to nothing (the test above).
    assert not [
        hex(code_point)
        for code_point in range(CHANGED_BELOW)
        for folded in set(fold(chr(code_point)))
        if chr(code_point) not in fold_sources(folded)
    ]


# Characters viewers type and the ones that fold into others: full-width forms, traditional
# characters, radicals, ligatures, circled and mathematical letters.
_TYPED = st.sampled_from(list("口红紅⼝羊绒開开衫链接鏈2②２sSｓßﬆ𝐬號号 ，!"))


@given(st.text(_TYPED, max_size=12), st.text(_TYPED, min_size=1, max_size=4))
def test_the_screen_lets_through_every_text_whose_fold_holds_the_word(text: str, word: str) -> None:
    folded_word = fold(word)
    if folded_word and folded_word in fold(text):
        assert screen([folded_word]).search(text) is not None


def test_the_screen_stops_a_text_that_cannot_name_the_word() -> None:
    words = [fold("羊绒开衫"), fold("口红")]
    assert screen(words).search("第12位：身高152体重92斤，这件M码还有吗？") is None
    assert screen(words).search("⼝ 紅 有吗") is not None
    assert screen([]).search("anything") is None
