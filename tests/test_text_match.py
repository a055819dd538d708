"""The one helper that compares a model's words with a truth file (tests/text_match.py)."""

import json

from conftest import DATA
from text_match import (TINY_EN_MAX_WER, heard_truth_word, said_more_often_than_spoken, word_error_rate,
                        word_errors, words)

TRUTH = json.loads((DATA / "sample.json").read_text())["text"]


def test_case_punctuation_and_digits_do_not_count():
    assert words("The quick, brown FOX -- don't; 7 dogs at 9:15!") == [
        "the", "quick", "brown", "fox", "dont", "seven", "dogs", "at", "nine", "fifteen"]
    assert word_errors("the quick brown fox jumps over the lazy dog seven purple elephants are dancing "
                       "in the kitchen", TRUTH) == 0


def test_each_substitution_insertion_and_deletion_is_one_error():
    assert word_errors("the quick brown fox", "the quick brown fox") == 0
    assert word_errors("the quick round fox", "the quick brown fox") == 1
    assert word_errors("the quick fox", "the quick brown fox") == 1
    assert word_errors("the the quick brown fox", "the quick brown fox") == 1
    assert word_errors("", "the quick brown fox") == 4


def test_what_two_machines_wrote_passes_and_other_words_do_not():
    # This machine's tiny.en and another machine's, on tests/data/sample.mp4.
    for heard in ("The quick brown fox jump over the lazy dog, 7 purple elephant sardansing in the kitchen.",
                  "the quick round fox jump over the lazy dog, 7 purple elephant sardansing in the kitchen"):
        assert word_error_rate(heard, TRUTH) <= TINY_EN_MAX_WER
    lighthouse = json.loads((DATA / "lighthouse.json").read_text())["text"]
    assert word_error_rate(lighthouse, TRUTH) > TINY_EN_MAX_WER
    assert word_error_rate("the quick brown fox", TRUTH) > TINY_EN_MAX_WER  # most of it lost


def test_words_heard_twice_are_named():
    assert said_more_often_than_spoken(TRUTH + " lazy dog", TRUTH) == {"lazy": 1, "dog": 1}
    assert said_more_often_than_spoken("the quick round fox", TRUTH) == {}


def test_the_query_is_a_truth_word_the_model_heard():
    assert heard_truth_word("The light housekeeper signed the contract", "The lighthouse keeper signed the contract") \
        == "contract"
    assert heard_truth_word("The lighthouse keep assigned", "The lighthouse keeper signed") == "lighthouse"
