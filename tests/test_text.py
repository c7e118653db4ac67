"""Normalisation folds the ways viewers type a word into one spelling."""

from __future__ import annotations

import pytest

from livectl.kit.text import fold, normalise


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
