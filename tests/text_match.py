"""What a speech model guarantees, as tests check it: the words of a truth file, compared
case- and punctuation-insensitively, within a word error rate the test names.

A model's exact words, casing and punctuation change between CPUs and library builds
(one machine's tiny.en writes "The quick brown fox jump over", another's "the quick brown
fox jump over"): a test that pins a string fails for the next person. So tests compare
normalised words (casefolded, punctuation dropped, digits spelt out: "7" is "seven") by
edit distance against the truth in tests/data/*.json, and say how many errors they allow.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

# tiny.en on the committed espeak clips makes about one word in five wrong on this machine
# ("jump" for "jumps", "keep assigned" for "keeper signed", "harbor"); other CPUs and
# library builds change a word or two more. Tests of the pipeline around the model allow
# this much; a test of the model's own quality would name a tighter one.
TINY_EN_MAX_WER = 0.4

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def _spelt(number: int) -> list[str]:
    if number < 20:
        return [_ONES[number]]
    if number < 100:
        return [_TENS[number // 10]] + ([_ONES[number % 10]] if number % 10 else [])
    if number < 1000:
        return [_ONES[number // 100], "hundred"] + (_spelt(number % 100) if number % 100 else [])
    return [str(number)]


def words(text: str) -> list[str]:
    """The words of `text`, as a comparison should see them: casefolded, without
    punctuation (apostrophes inside words dropped: "don't" is "dont"), digits spelt."""
    found = []
    for word in re.findall(r"[\w']+", unicodedata.normalize("NFKC", text).casefold()):
        word = word.replace("'", "")
        if word.isdigit():
            found += _spelt(int(word))
        elif word:
            found.append(word)
    return found


def word_errors(heard: str, truth: str) -> int:
    """Substitutions, insertions and deletions that turn the truth's words into the heard ones."""
    said, got = words(truth), words(heard)
    row = list(range(len(got) + 1))
    for i, expected in enumerate(said, start=1):
        previous, row[0] = row[0], i
        for j, word in enumerate(got, start=1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (expected != word))
    return row[-1]


def word_error_rate(heard: str, truth: str) -> float:
    return word_errors(heard, truth) / max(1, len(words(truth)))


def assert_words(heard: str, truth: str, max_wer: float) -> None:
    """The heard text says the truth's words, give or take `max_wer` of them."""
    rate = word_error_rate(heard, truth)
    assert rate <= max_wer, (f"word error rate {rate:.2f} > {max_wer}:\n  truth: {' '.join(words(truth))}\n"
                             f"  heard: {' '.join(words(heard))}")


def said_more_often_than_spoken(heard: str, truth: str) -> dict[str, int]:
    """Words of the truth that the heard text holds more times than the truth does (a
    piece of speech transcribed twice, as at a badly cut chunk boundary): word -> extra."""
    spoken, got = Counter(words(truth)), Counter(words(heard))
    return {word: got[word] - n for word, n in spoken.items() if got[word] > n}


def heard_truth_word(heard: str, truth: str) -> str:
    """The longest word of the truth that the heard text holds: a query a search must find,
    whichever words this machine's model got right."""
    got = set(words(heard))
    shared = [w for w in words(truth) if w in got]
    assert shared, f"the model heard none of the truth's words: {heard!r}"
    return max(shared, key=len)


def spoken_at(truth: dict, word: str) -> float:
    """About when a truth file's `word` (as words() spells it) is spoken: the committed clips
    are synthetic speech at an even pace, so by where the word sits in the text, between
    speech_start_s and speech_end_s. Good to about half a second."""
    text = unicodedata.normalize("NFKC", truth["text"]).casefold()
    at = next(m.start() for m in re.finditer(r"[\w']+", text) if words(m.group()) == [word])
    share = at / len(text)
    return truth["speech_start_s"] + share * (truth["speech_end_s"] - truth["speech_start_s"])
