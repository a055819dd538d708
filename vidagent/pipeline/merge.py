"""What one video's jobs brought back, on one timeline: the Report."""

from __future__ import annotations

from datetime import datetime, timezone

from .. import __version__
from ..config import SECRET_FIELDS, Settings
from ..media.probe import MediaInfo
from ..media.stats import ExtractStats
from ..report.events import build_events
from ..report.model import Report, Transcript
from ..report.tracks import build_tracks, count_objects
from ..speakers.assign import label_segments, speaker_list
from ..speakers.timeline import diarize_video
from ..tasks.transcribe import NO_WORDS_WARNING
from .run import Collected, Failure

_STAGE_WORDS = {"detect": "detection", "transcribe": "transcription", "caption": "captions", "summary": "summary",
                "speakers": "speakers", "segment": "segments"}
NO_SPEAKERS = {
    "whisper": "the whisper endpoint returned no speakers: RunPod's official worker-faster_whisper has no "
               "diarization; deploy vidagent's whisper image (endpoints/whisper, `vidagent deploy`) for --speakers",
    "segment": "the segment endpoint returned no speakers: its image predates --speakers on the segment path; "
               "rebuild and deploy it (`vidagent deploy --only segment`)",
}


def merge(media: MediaInfo, settings: Settings, got: Collected, stats: ExtractStats, timings: dict,
          streams: list[int], backends: dict[str, str]) -> Report:
    warnings = list(stats.warnings)
    if not media.has_video and (settings.detect or settings.caption):
        warnings.append("no video stream: detection and captions skipped (audio only)")
    if settings.transcribe and not media.has_audio:
        warnings.append("no audio stream: the transcript is empty")
    elif settings.transcribe and got.audio_chunks and got.silent_chunks == got.audio_chunks:
        warnings.append("the audio is silent: nothing to transcribe")
    if got.segments_without_words:
        warnings.append(NO_WORDS_WARNING)
    failed = failed_stages(got.failures)
    warnings += [f"{_STAGE_WORDS[stage]} failed: {reason}" for stage, reason in failed.items()]
    models = {}
    if settings.detect and media.has_video:
        models["detector"] = settings.yolo_model
    if settings.transcribe and media.has_audio:
        models["transcriber"] = settings.whisper_model
    if (settings.caption and media.has_video) or settings.summary:
        models["captioner"] = settings.vlm_model
    detections = sorted(got.detections, key=lambda d: d.t)
    tracks = build_tracks(detections)
    segments = sorted(got.segments, key=lambda s: (s.start, s.end))
    speakers, turns = [], []
    if settings.speakers and got.audio_chunks:
        segments, speakers, turns = _with_speakers(segments, got, settings, failed, warnings, models)
    elif not settings.word_timestamps:
        segments = [s.model_copy(update={"words": None}) if s.words else s for s in segments]
    captions = sorted(got.captions, key=lambda c: c.t)
    return Report(
        status="partial" if failed else "complete",
        failed_stages=failed,
        vidagent_version=__version__,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        media=media,
        settings=settings.model_dump(mode="json", exclude={"out", *SECRET_FIELDS}),
        models=models,
        detections=detections,
        transcript=Transcript(
            language=main_language(got.languages, settings.language),
            language_probability=language_probability(got.languages),
            streams=streams,
            segments=segments,
        ),
        captions=captions,
        speakers=speakers,
        speaker_turns=turns,
        summary=got.summary,
        tracks=tracks,
        events=build_events(tracks, Transcript(segments=segments), captions),
        object_counts=count_objects(tracks),
        warnings=warnings,
        timings=timings,
        usage=got.usage,
        backends=backends,
    )


def _with_speakers(segments, got: Collected, settings: Settings, failed: dict, warnings: list, models: dict):
    """Segments labelled and split by speaker, the speakers and their turns; a diarization
    that cannot be done leaves the transcript as it is and the report partial."""
    reason = None
    broken = [c.reply["error"] for c in got.speaker_chunks if "error" in c.reply]
    if got.chunks_without_speakers:
        reason = NO_SPEAKERS[got.speakers_from]
    elif broken:
        reason = f"{len(broken)} chunk(s) without speakers: {str(broken[0])[:300]}"
    elif got.speaker_chunks:
        try:
            found = diarize_video(got.speaker_chunks, settings.speaker_threshold, settings.num_speakers,
                                  settings.min_speakers, settings.max_speakers)
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            reason = f"the whisper endpoint sent speaker data vidagent cannot read ({type(exc).__name__}: {exc})"
        else:
            labelled = label_segments(segments, found.turns, settings.word_timestamps)
            speakers, turns = speaker_list(found.turns, found.voices)
            models["diarizer"] = f"{found.backend}:{found.model}"
            if settings.num_speakers and found.count != settings.num_speakers:
                warnings.append(f"speakers: {found.count} heard, fewer than --num-speakers {settings.num_speakers}")
            return labelled, speakers, turns
    if reason:
        failed["speakers"] = reason
        warnings.append(f"speakers failed: {reason}")
    keep = settings.word_timestamps
    return [s if keep or not s.words else s.model_copy(update={"words": None}) for s in segments], [], []


def failed_stages(failures: list[Failure]) -> dict[str, str]:
    """Per stage, one line: how many jobs failed, the stretch they leave empty, the first reason."""
    lines = {}
    for stage in _STAGE_WORDS:
        mine = [f for f in failures if f.stage == stage]
        if not mine:
            continue
        spans = sorted({(f.start, f.end) for f in mine if f.start is not None and f.end is not None})
        if stage == "segment" and spans:  # stretches apart: name each one
            where = f" ({', '.join(f'{a:.1f}-{b:.1f}s' for a, b in spans)} {'has' if len(spans) == 1 else 'have'} no results)"
        elif spans:
            where = f" ({min(a for a, _ in spans):.1f}-{max(b for _, b in spans):.1f}s has no results)"
        else:
            where = ""
        lines[stage] = f"{len(mine)} job(s) failed{where}: {mine[0].reason}"
    return lines


def main_language(languages, forced: str | None) -> str | None:
    if forced:
        return forced
    weight: dict[str, float] = {}
    for language, _, seconds in languages:
        if language:
            weight[language] = weight.get(language, 0.0) + seconds
    return max(weight, key=weight.get) if weight else None


def language_probability(languages) -> float | None:
    scored = [(p, s) for _, p, s in languages if p is not None]
    total = sum(s for _, s in scored)
    return round(sum(p * s for p, s in scored) / total, 4) if total else None
