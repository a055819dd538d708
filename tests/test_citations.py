"""Citations in answers: which resolve, which are removed, and which sentence each belongs to."""

from __future__ import annotations

import pytest

from vidagent.citations import Span, check, parse_clock

# Two videos: a speech segment 12.3-15.8 and a caption at 30 in "harbour", a segment 12-13 in "office".
SPANS = [Span("h", 12.3, 15.8, "h-speech"), Span("h", 30.0, 30.0, "h-caption"), Span("o", 12.0, 13.0, "o-speech")]
NAMES = {"harbour": "h", "harbour.mp4": "h", "office": "o"}


def test_times_inside_or_within_a_second_of_a_moment_resolve():
    checked = check("A [harbour 00:12]. B [harbour 00:16]. C [harbour 00:30]. D [office 0:12].", SPANS, NAMES)
    assert [(c.video, c.t, [s.ref for s in c.spans]) for c in checked.citations] == [
        ("h", 12.0, ["h-speech"]), ("h", 16.0, ["h-speech"]), ("h", 30.0, ["h-caption"]), ("o", 12.0, ["o-speech"])]
    assert checked.unresolved == []


def test_unresolved_citations_are_removed_and_say_why():
    answer = "The keeper speaks [harbour 00:12, harbour 00:59]. Made up [nowhere 00:12]. Which one [00:12]?"
    checked = check(answer, SPANS, NAMES)
    assert checked.text == "The keeper speaks [harbour 00:12]. Made up. Which one?"
    reasons = {u.text: u.reason for u in checked.unresolved}
    assert set(reasons) == {"harbour 00:59", "nowhere 00:12", "00:12"}
    assert "00:59" in reasons["harbour 00:59"]
    assert "names no video" in reasons["nowhere 00:12"]
    assert "more than one video" in reasons["00:12"]  # both videos have a moment at 00:12


def test_a_citation_without_a_name_belongs_to_the_only_video_that_fits():
    checked = check("Something at the dock [00:30].", SPANS, NAMES)
    assert [(c.video, c.t) for c in checked.citations] == [("h", 30.0)]


def test_ranges_resolve_when_they_overlap_a_moment():
    checked = check("Talk [harbour 00:13-00:20]. Silence [harbour 00:40–00:50].", SPANS, NAMES)
    assert [(c.t, c.t_end) for c in checked.citations] == [(13.0, 20.0)]
    assert [u.text for u in checked.unresolved] == ["harbour 00:40–00:50"]


def test_brackets_without_a_time_are_text():
    checked = check("See note [1] and [sic], then [harbour 00:30].", SPANS, NAMES)
    assert checked.text == "See note [1] and [sic], then [harbour 00:30]."
    assert len(checked.citations) == 1 and checked.unresolved == []


def test_sentences_carry_the_citations_written_in_or_after_them():
    checked = check("First thing [00:30]. Second thing. [00:14] Third thing [00:59]! Fourth.", SPANS[:2])
    assert [(s.text, [c.t for c in s.citations]) for s in checked.sentences] == [
        ("First thing.", [30.0]), ("Second thing.", [14.0]), ("Third thing!", []), ("Fourth.", [])]


def test_hours_and_decimals():
    assert parse_clock("1:02:03.5") == 3723.5
    assert parse_clock("00:12") == 12.0
    assert parse_clock("90") == 90.0
    with pytest.raises(ValueError):
        parse_clock("1::2")
    checked = check("Late [1:00:05].", [Span("x", 3604.6, 3606.0)])
    assert [c.t for c in checked.citations] == [3605.0]
