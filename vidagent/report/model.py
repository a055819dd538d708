"""The report schema. `vidagent schema` prints it as JSON Schema.

Every time is float seconds from the video's first frame. Boxes are in the pixels of the
video as displayed (rotation applied, full size), whatever size the detector saw.
Bump SCHEMA_VERSION's minor for added fields, its major for anything that breaks readers.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from ..media.probe import MediaInfo

SCHEMA_VERSION = "1.5"  # 1.4: speakers (older reports read as they are: no speaker anywhere); 1.5: speakers[].matched


class DetectedObject(BaseModel):
    label: str
    class_id: int
    confidence: float
    box: list[float] = Field(description="[x1, y1, x2, y2] in display pixels of the video.")


class FrameDetections(BaseModel):
    t: float = Field(description="Seconds from the first frame (the frame's own pts).")
    objects: list[DetectedObject]


class Word(BaseModel):
    word: str
    start: float
    end: float
    probability: float | None = None
    speaker: str | None = Field(None, description="Id of the speaker (see Report.speakers); none in silence or without --speakers.")


class Segment(BaseModel):
    start: float = Field(description="Time of its first word.")
    end: float = Field(description="Time its last word ends.")
    text: str
    words: list[Word] | None = None
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    stream: int | None = Field(None, description="Audio stream (container index) it was heard on, when several were transcribed.")
    speaker: str | None = Field(None, description="Id of who says most of it (see Report.speakers); none without --speakers.")
    overlap: list[str] = Field(default_factory=list, description="Ids of others heard over it at the same time (overlapping speech).")


class SpeakerMatch(BaseModel):
    video: str = Field(description="The input where this voice was first heard in the batch.")
    speaker: str = Field(description="Its speaker id in that video's report.")
    similarity: float = Field(description="Cosine similarity of the two voices (1 is the same); matched at match_threshold or above.")


class Speaker(BaseModel):
    """One voice of the video, found by diarization (vidagent/speakers)."""

    id: str = Field(description="1, 2, ... in order of first speech; what segments and words name.")
    name: str = Field(description="Shown in subtitles, HTML and search: Speaker N until renamed (vidagent speakers rename).")
    speech_s: float = Field(description="Seconds this speaker speaks.")
    turns: int = Field(description="Turns taken.")
    matched: SpeakerMatch | None = Field(
        None, description="With --match-speakers: the earlier video of the batch whose speaker has this voice (the name is theirs).")
    # The voice itself (unit mean embedding), held while the batch runs so later videos can be
    # matched against it; never written: a voiceprint is not for a report.
    voice: list[float] | None = Field(None, exclude=True, repr=False)


class SpeakerTurn(BaseModel):
    start: float
    end: float
    speaker: str = Field(description="Speaker id; turns of two speakers overlap where both speak.")


class Transcript(BaseModel):
    language: str | None = None
    language_probability: float | None = None
    streams: list[int] = Field(default_factory=list, description="Container index of each audio stream transcribed.")
    segments: list[Segment] = Field(default_factory=list)


class Caption(BaseModel):
    t: float = Field(description="Seconds from the first frame of the captioned frame.")
    reason: str = Field(description="Why the policy captioned it: first, scene, trigger:<label>, coverage.")
    text: str
    people_count: int | None = None
    actions: list[str] = Field(default_factory=list)
    visible_text: list[str] = Field(default_factory=list)
    structured: bool = Field(description="True when the answer was valid JSON of the asked shape.")


class EndpointUsage(BaseModel):
    """Work sent to one endpoint; execution_s is what a per-second GPU bill counts."""

    jobs: int = 0
    cached_jobs: int = Field(0, description="Jobs answered from the cache (no GPU time).")
    items: int = 0
    execution_s: float = 0.0
    delay_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = Field(None, description="execution_s at the endpoint's flex price (configs/prices.yaml); none where RunPod did not run it.")


class Track(BaseModel):
    """One object followed across detection frames (report/tracks.py)."""

    id: int
    label: str
    class_id: int
    first_seen: float
    last_seen: float
    frames: int = Field(description="Detection frames the object was seen in.")
    best_t: float = Field(description="Time of its highest-confidence detection.")
    best_confidence: float
    best_box: list[float] = Field(description="[x1, y1, x2, y2] at best_t, display pixels.")
    path: list[list[float]] = Field(
        default_factory=list, description="[t, x1, y1, x2, y2] points, evenly thinned when long."
    )


class Event(BaseModel):
    """Something that happened over a span of time (report/events.py)."""

    kind: str = Field(description="appears, crowd, speech or scene.")
    start: float
    end: float
    label: str
    text: str


class SummarySentence(BaseModel):
    """One sentence of the summary and the times it rests on (vidagent/tasks/summary.py)."""

    text: str = Field(description="The sentence, without its citations.")
    times: list[float] = Field(
        default_factory=list,
        description="Seconds it cites; each falls on a caption or speech segment of this report.",
    )


class EvidencedSummary(BaseModel):
    """What the summary stage produces; Report takes it in place of the `summary` text."""

    sentences: list[SummarySentence]
    warnings: list[str] = Field(default_factory=list)

    @property
    def text(self) -> str:
        from ..timefmt import short_clock as clock

        return " ".join(
            s.text + "".join(f" [{clock(t)}]" for t in s.times) for s in self.sentences
        ).strip()


class Report(BaseModel):
    schema_version: str = SCHEMA_VERSION
    status: Literal["complete", "partial"] = Field(
        "complete", description="partial: a stage failed (see failed_stages); what succeeded is here.")
    failed_stages: dict[str, str] = Field(default_factory=dict, description="Stage -> why it failed.")
    vidagent_version: str
    created_at: str = Field(description="UTC, ISO 8601.")
    media: MediaInfo
    settings: dict = Field(description="The effective settings of this run.")
    models: dict[str, str] = Field(default_factory=dict)
    detections: list[FrameDetections] = Field(default_factory=list)
    transcript: Transcript = Field(default_factory=Transcript)
    captions: list[Caption] = Field(default_factory=list)
    summary: str | None = Field(None, description="The summary as text, each sentence followed by its [MM:SS] citations.")
    summary_sentences: list[SummarySentence] = Field(
        default_factory=list, description="The summary sentence by sentence, with the times each rests on."
    )
    speakers: list[Speaker] = Field(default_factory=list, description="Who speaks (with --speakers).")
    speaker_turns: list[SpeakerTurn] = Field(default_factory=list, description="Who speaks when; silence has none.")
    tracks: list[Track] = Field(default_factory=list, description="Detections linked into objects.")
    events: list[Event] = Field(default_factory=list, description="Appearances, crowds, speech, scene changes.")
    object_counts: dict[str, int] = Field(
        default_factory=dict, description="Per label, the number of distinct objects (tracks)."
    )
    warnings: list[str] = Field(default_factory=list)
    timings: dict[str, float] = Field(default_factory=dict, description="Wall seconds per stage.")
    usage: dict[str, EndpointUsage] = Field(default_factory=dict, description="Per endpoint.")
    backends: dict[str, str] = Field(
        default_factory=dict,
        description="Where each endpoint's jobs ran: runpod (billed), local, or openai:<host>.",
    )

    def speaker_name(self, speaker_id: str | None) -> str | None:
        for speaker in self.speakers:
            if speaker.id == speaker_id:
                return speaker.name
        return f"Speaker {speaker_id}" if speaker_id else None

    @model_validator(mode="before")
    @classmethod
    def _evidenced_summary(cls, data):
        # The pipeline hands the summary stage's result over as `summary`; it becomes the
        # text, the sentences and the stage's warnings.
        if isinstance(data, dict) and isinstance(data.get("summary"), EvidencedSummary):
            summary = data["summary"]
            data = {**data, "summary": summary.text or None, "summary_sentences": summary.sentences,
                    "warnings": [*data.get("warnings", []), *summary.warnings]}
        return data
