"""Cost estimates: what a run sends to each endpoint and what RunPod bills for it. Pure.

Counts come from the same sampling plan (`plan.make_plan`) and caption policy
(`captions.policy.CaptionPolicy`) that `analyze` follows; seconds from a per-unit time
profile (configs/profile.yaml); dollars from a per-second price table
(configs/prices.yaml); both tables, their files and their schema are cost/tables.py.
Probing videos is the caller's job: this module takes facts, settings and tables and
returns pydantic models.

Billed seconds of one endpoint =
    units x seconds_per_unit + jobs x seconds_per_request (+ summaries x seconds_per_summary)
    + cold_starts x (cold_start_s + idle_s)
where units are images (yolo), seconds of audio (whisper) or captions (vlm).

The naive plan is the seed's: YOLO on every frame at 10 fps, one frame per request;
Whisper on the whole audio in one request; the VLM on every 1 fps frame. It runs the same
stages as the configured plan, so the difference is what sampling, batching and the
caption policy save, not what switching a stage off saves.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from ..config import Settings
from ..media.probe import MediaInfo
from ..plan import expected_frames, make_plan
from .captions import TYPICAL_SCENE_S, CaptionCounts, caption_bounds
from .tables import ENDPOINTS, PriceTable, TimeProfile

ESTIMATE_VERSION = "1"

NAIVE_DETECT_FPS = 10.0
NAIVE_CAPTION_FPS = 1.0
ASSUMED_FPS = 30.0  # --duration: a common frame rate; it only caps the sampling rates


# -- what a video is, as far as cost goes ---------------------------------------------


class MediaFacts(BaseModel):
    """The facts of a video the plan depends on (a MediaInfo has them all)."""

    name: str
    duration_s: float = Field(ge=0)
    fps: float | None = Field(None, gt=0)
    has_audio: bool
    has_video: bool = True
    source: Literal["probe", "assumed"] = "probe"
    width: int | None = Field(None, description="Display size (the segment path's decode cost); None: assumed.")
    height: int | None = None
    size_bytes: int | None = Field(None, description="The file's size (what the segment path uploads); None: assumed.")

    @classmethod
    def of(cls, media: MediaInfo) -> MediaFacts:
        return cls(name=media.file_name, duration_s=media.duration_s, fps=media.fps, has_audio=media.has_audio,
                   has_video=media.has_video, width=media.width, height=media.height, size_bytes=media.size_bytes)

    @classmethod
    def assumed(cls, duration_s: float) -> MediaFacts:
        """A video of this length as `--duration` pictures it: 30 fps, with audio."""
        return cls(name=f"{duration_s:g} s of video", duration_s=duration_s, fps=ASSUMED_FPS,
                   has_audio=True, source="assumed")


_DURATION = re.compile(
    r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?"
)


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90.5`, `90s`, `10m`, `1h`, `1h30m`, `1h2m3s`; ValueError otherwise."""
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        seconds = float(cleaned)
    else:
        match = _DURATION.fullmatch(cleaned)
        if not cleaned or match is None:
            raise ValueError(f"{text!r} is not a duration; write seconds or e.g. 90s, 10m, 1h, 1h30m")
        parts = {k: float(v) for k, v in match.groupdict().items() if v is not None}
        seconds = parts.get("h", 0.0) * 3600 + parts.get("m", 0.0) * 60 + parts.get("s", 0.0)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a duration longer than zero")
    return seconds


# -- work and its cost ------------------------------------------------------------------


class Work(BaseModel):
    """What one plan sends to one endpoint."""

    jobs: int = 0
    items: int = 0  # what EndpointUsage.items counts: frames, audio chunks, VLM requests
    units: float = 0.0  # what seconds_per_unit multiplies: images, audio seconds, captions
    summaries: int = 0
    diarized_units: float = 0.0  # whisper: audio seconds also diarized (--speakers)

    def __add__(self, other: Work) -> Work:
        return Work(jobs=self.jobs + other.jobs, items=self.items + other.items,
                    units=self.units + other.units, summaries=self.summaries + other.summaries,
                    diarized_units=self.diarized_units + other.diarized_units)


def configured_work(media: MediaFacts, settings: Settings, captions: int) -> dict[str, Work]:
    """The plan `analyze` follows; `captions` is how many the policy makes (caption_bounds)."""
    plan = make_plan(media, settings)  # reads only duration_s, fps, has_audio and has_video
    work = {endpoint: Work() for endpoint in ENDPOINTS}
    if plan.detect_frames:
        work["yolo"] = Work(jobs=plan.detect_jobs, items=plan.detect_frames, units=plan.detect_frames)
    if plan.audio_chunks:
        work["whisper"] = Work(jobs=plan.audio_chunks, items=plan.audio_chunks, units=media.duration_s,
                               diarized_units=media.duration_s if settings.speakers else 0.0)
    captions = captions if settings.caption and media.has_video else 0
    summaries = 1 if settings.summary else 0
    if captions or summaries:
        requests = captions + summaries
        work["vlm"] = Work(jobs=requests, items=requests, units=captions, summaries=summaries)
    return work


def naive_work(media: MediaFacts, settings: Settings) -> dict[str, Work]:
    """The seed's plan for the same stages (no summary: the seed had none)."""
    work = {endpoint: Work() for endpoint in ENDPOINTS}
    if settings.detect and media.has_video:
        frames = expected_frames(media.duration_s, NAIVE_DETECT_FPS, media.fps)
        work["yolo"] = Work(jobs=frames, items=frames, units=frames)
    if settings.transcribe and media.has_audio:
        work["whisper"] = Work(jobs=1, items=1, units=media.duration_s)
    if settings.caption and media.has_video:
        frames = expected_frames(media.duration_s, NAIVE_CAPTION_FPS, media.fps)
        work["vlm"] = Work(jobs=frames, items=frames, units=frames)
    return work


class EndpointCost(BaseModel):
    pool: str
    jobs: int
    items: int
    units: float
    gpu_s: float = Field(description="Busy worker seconds: units, requests, summaries.")
    cold_starts: int
    cold_start_s: float = Field(description="cold_starts x (cold_start_s + idle_s).")
    billed_s: float = Field(description="gpu_s + cold_start_s: what flex workers bill.")
    usd_flex: float = Field(description="billed_s at the flex price.")
    usd_active: float = Field(description="gpu_s at the active price: always-on workers have no cold start.")


class Totals(BaseModel):
    jobs: int
    items: int
    gpu_s: float
    cold_starts: int
    billed_s: float
    usd_flex: float
    usd_active: float


class PlanCost(BaseModel):
    endpoints: dict[str, EndpointCost]
    total: Totals


def cost_of(work: Mapping[str, Work], prices: PriceTable, profile: TimeProfile) -> PlanCost:
    """Seconds and dollars of a plan's work. Cold starts are counted once per endpoint
    with work, as one run would have them."""
    costs = {}
    for endpoint in ENDPOINTS:
        w, p, pool = work[endpoint], profile.of(endpoint), prices.pool_of(endpoint)
        summary_s = getattr(p, "seconds_per_summary", 0.0)
        diarize_s = getattr(p, "diarize_seconds_per_unit", 0.0)
        gpu_s = (w.units * p.seconds_per_unit + w.jobs * p.seconds_per_request + w.summaries * summary_s
                 + w.diarized_units * diarize_s)
        cold_starts = p.cold_starts_per_run if w.jobs else 0
        cold_start_s = cold_starts * (p.cold_start_s + p.idle_s)
        billed_s = gpu_s + cold_start_s
        costs[endpoint] = EndpointCost(
            pool=prices.endpoints[endpoint],
            jobs=w.jobs,
            items=w.items,
            units=round(w.units, 3),
            gpu_s=round(gpu_s, 3),
            cold_starts=cold_starts,
            cold_start_s=round(cold_start_s, 3),
            billed_s=round(billed_s, 3),
            usd_flex=round(billed_s * pool.flex_usd_per_s, 6),
            usd_active=round(gpu_s * pool.active_usd_per_s, 6),
        )
    total = Totals(
        jobs=sum(c.jobs for c in costs.values()),
        items=sum(c.items for c in costs.values()),
        gpu_s=round(sum(c.gpu_s for c in costs.values()), 3),
        cold_starts=sum(c.cold_starts for c in costs.values()),
        billed_s=round(sum(c.billed_s for c in costs.values()), 3),
        usd_flex=round(sum(c.usd_flex for c in costs.values()), 6),
        usd_active=round(sum(c.usd_active for c in costs.values()), 6),
    )
    return PlanCost(endpoints=costs, total=total)


# -- where the seconds come from ----------------------------------------------------------


class Figure(BaseModel):
    """Where one endpoint's seconds per unit come from, and the pool they are priced at."""

    provenance: Literal["published", "measured"]
    gpu: str = Field(description="measured: the card it ran on; published: the cards it was scaled to.")
    date: str
    source: str
    pool: str
    on_pool_gpu: bool = Field(description="Whether `gpu` is one of the pool's cards.")

    @classmethod
    def of(cls, endpoint: str, profile: TimeProfile, prices: PriceTable) -> Figure:
        p, pool = profile.of(endpoint), prices.pool_of(endpoint)
        return cls(provenance=p.provenance, gpu=p.gpu, date=p.date, source=p.source,
                   pool=prices.endpoints[endpoint], on_pool_gpu=pool.has_gpu(p.gpu))

    def short(self) -> str:
        """For a table cell: `measured H200 2026-12-10`, `published 2026-11-27`."""
        if self.provenance == "measured":
            gpu = self.gpu.removeprefix("NVIDIA ")
            return f"measured {gpu if len(gpu) <= 16 else gpu[:15] + '…'} {self.date}"
        return f"published {self.date}"

    def line(self, endpoint: str, prices: PriceTable) -> str:
        if self.provenance == "published":
            hosts = ", ".join(dict.fromkeys(urlparse(u).netloc for u in re.findall(r"https?://\S+", self.source)))
            return f"{endpoint}: published figure ({hosts or self.source}), scaled to {self.gpu}, {self.date}"
        text = f"{endpoint}: measured on {self.gpu}, {self.date} ({self.source})"
        if not self.on_pool_gpu:
            text += (f"; priced as {self.pool} ({prices.pools[self.pool].gpus}), other cards than "
                     "it was measured on, which may be slower or faster")
        return text


# -- the estimate ----------------------------------------------------------------------


class VideoEstimate(BaseModel):
    name: str
    duration_s: float
    fps: float | None
    has_audio: bool
    source: Literal["probe", "assumed"]
    captions: CaptionCounts | None = Field(None, description="None when captions are off.")


class Estimate(BaseModel):
    estimate_version: str = ESTIMATE_VERSION
    videos: list[VideoEstimate]
    duration_s: float
    captions_mode: Literal["off", "bounds", "exact"]
    configured: PlanCost = Field(description="captions: exact when decoded, else typical.")
    configured_usd_flex_min: float = Field(description="With the fewest captions the policy can make.")
    configured_usd_flex_max: float = Field(description="With the most captions the policy can make.")
    naive: PlanCost
    saving_usd_flex: float
    saving_fraction: float | None = Field(description="saving / naive; None when naive costs nothing.")
    configured_usd_flex_per_hour: float | None
    naive_usd_flex_per_hour: float | None
    figures: dict[str, Figure] = Field(description="Per endpoint: measured or published, where, when.")
    notes: list[str]


def estimate(
    media_facts: MediaFacts | MediaInfo | Sequence[MediaFacts | MediaInfo],
    settings: Settings,
    prices: PriceTable,
    profile: TimeProfile,
    exact_captions: Sequence[int] | None = None,
) -> Estimate:
    """The cost of analysing these videos in one run, and of the naive plan for them.

    Pass every video of a run in one call: cold starts are counted once per endpoint per
    call. `exact_captions`, one per video, replaces the typical caption count with the
    count `count_captions` gave over the decoded candidates."""
    if isinstance(media_facts, (MediaFacts, MediaInfo)):
        media_facts = [media_facts]
    videos = [m if isinstance(m, MediaFacts) else MediaFacts.of(m) for m in media_facts]
    if exact_captions is not None and len(exact_captions) != len(videos):
        raise ValueError("exact_captions needs one count per video")

    entries = []
    configured, low, high, naive = _no_work(), _no_work(), _no_work(), _no_work()
    for i, video in enumerate(videos):
        counts = caption_bounds(video, settings) if settings.caption and video.has_video else None
        if counts is not None and exact_captions is not None:
            counts.exact = exact_captions[i]
        entries.append(VideoEstimate(**video.model_dump(), captions=counts))
        chosen, fewest, most = (counts.chosen, counts.min, counts.max) if counts else (0, 0, 0)
        configured = _add(configured, configured_work(video, settings, chosen))
        low = _add(low, configured_work(video, settings, fewest))
        high = _add(high, configured_work(video, settings, most))
        naive = _add(naive, naive_work(video, settings))

    configured_cost = cost_of(configured, prices, profile)
    naive_cost = cost_of(naive, prices, profile)
    figures = {endpoint: Figure.of(endpoint, profile, prices) for endpoint in ENDPOINTS}
    duration = sum(v.duration_s for v in videos)
    saving = naive_cost.total.usd_flex - configured_cost.total.usd_flex
    mode = "off" if not settings.caption else ("exact" if exact_captions is not None else "bounds")
    return Estimate(
        videos=entries,
        duration_s=round(duration, 3),
        captions_mode=mode,
        configured=configured_cost,
        configured_usd_flex_min=cost_of(low, prices, profile).total.usd_flex,
        configured_usd_flex_max=cost_of(high, prices, profile).total.usd_flex,
        naive=naive_cost,
        saving_usd_flex=round(saving, 6),
        saving_fraction=round(saving / naive_cost.total.usd_flex, 4) if naive_cost.total.usd_flex else None,
        configured_usd_flex_per_hour=_per_hour(configured_cost.total.usd_flex, duration),
        naive_usd_flex_per_hour=_per_hour(naive_cost.total.usd_flex, duration),
        figures=figures,
        notes=_notes(videos, settings, profile, mode) + [f.line(e, prices) for e, f in figures.items()],
    )


def _no_work() -> dict[str, Work]:
    return {endpoint: Work() for endpoint in ENDPOINTS}


def _add(a: Mapping[str, Work], b: Mapping[str, Work]) -> dict[str, Work]:
    return {endpoint: a[endpoint] + b[endpoint] for endpoint in ENDPOINTS}


def _per_hour(usd: float, duration_s: float) -> float | None:
    return round(usd / duration_s * 3600, 4) if duration_s > 0 else None


def _notes(videos: list[MediaFacts], settings: Settings, profile: TimeProfile, mode: str) -> list[str]:
    notes = []
    if any(v.source == "assumed" for v in videos):
        notes.append(f"--duration: the video is assumed to be {ASSUMED_FPS:g} fps with an audio track")
    if mode == "bounds":
        notes.append(
            "captions: the caption policy replayed on a static picture (min), on a cut every "
            f"{TYPICAL_SCENE_S:g} s with small motion in between (typical, used above) and on a "
            "picture that changes at every candidate (max); --captions exact decodes the video"
        )
    if mode == "exact":
        notes.append("captions: the caption policy replayed over the video's decoded caption candidates")
    if settings.caption and settings.caption_trigger_classes:
        notes.append(
            "captions: trigger classes need detections, which an estimate does not run; they count "
            "as never visible, so trigger captions are not in the typical or exact figure"
        )
    if not settings.caption:
        notes.append("vlm: captions are off in both plans (--caption to include them)")
    if settings.summary:
        notes.append("vlm: the summary is one request in the configured plan only (the seed had none)")
    if settings.transcribe:
        notes.append("whisper: every audio chunk is counted; silent chunks are not sent, so quiet audio costs less")
    starts = ", ".join(f"{e} {profile.of(e).cold_starts_per_run}" for e in ENDPOINTS)
    notes.append(
        f"cold starts per endpoint per run ({starts}) assume workers min 0; each bills its "
        "start and idle timeout at the flex price; $ active assumes warm always-on workers"
    )
    notes.append(
        "naive: the seed's plan for the same stages: YOLO one frame per request at 10 fps, "
        "Whisper on the whole audio in one request, the VLM on every frame at 1 fps"
    )
    return notes
