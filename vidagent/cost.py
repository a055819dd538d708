"""Cost estimates: what a run sends to each endpoint and what RunPod bills for it. Pure.

Counts come from the same sampling plan (`plan.make_plan`) and caption policy
(`captions.policy.CaptionPolicy`) that `analyze` follows; seconds from a per-unit time
profile (configs/profile.yaml); dollars from a per-second price table
(configs/prices.yaml). Reading those files and probing videos is the caller's job: this
module takes text, facts and settings and returns pydantic models.

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
from collections.abc import Iterable, Mapping, Sequence
from datetime import date as Date
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .captions.policy import CaptionPolicy, PolicySettings
from .config import Settings, yaml_mapping
from .errors import ConfigError
from .media.probe import MediaInfo
from .plan import expected_frames, make_plan
from .report.model import EndpointUsage

ESTIMATE_VERSION = "1"
ENDPOINTS = ("yolo", "whisper", "vlm")
Endpoint = Literal["yolo", "whisper", "vlm"]
UNITS = {"yolo": "image", "whisper": "audio_s", "vlm": "caption"}

NAIVE_DETECT_FPS = 10.0
NAIVE_CAPTION_FPS = 1.0
ASSUMED_FPS = 30.0  # --duration: a common frame rate; it only caps the sampling rates

# The "typical" caption count replays the policy on a picture with a hard cut every
# TYPICAL_SCENE_S and steady small motion in between (a change of TYPICAL_DRIFT_PER_S per
# second: above the duplicate threshold within a few seconds, far below a scene change).
TYPICAL_SCENE_S = 20.0
TYPICAL_DRIFT_PER_S = 0.004


# -- price table and time profile -----------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_date(value: Any) -> Any:
    # YAML reads an unquoted 2026-11-27 as a date; keep it as the text it was.
    return value.isoformat() if isinstance(value, Date) else value


class Pool(_Strict):
    gpus: str
    memory_gb: int = Field(gt=0)
    flex_usd_per_s: float = Field(gt=0)
    active_usd_per_s: float = Field(gt=0)
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)

    _date_as_text = field_validator("date", mode="before")(_iso_date)


class PriceTable(_Strict):
    pools: dict[str, Pool] = Field(min_length=1)
    endpoints: dict[Endpoint, str]

    def pool_of(self, endpoint: str) -> Pool:
        return self.pools[self.endpoints[endpoint]]


class EndpointProfile(_Strict):
    gpu: str
    unit: Literal["image", "audio_s", "caption"]
    seconds_per_unit: float = Field(ge=0)
    seconds_per_request: float = Field(ge=0)
    cold_start_s: float = Field(ge=0)
    idle_s: float = Field(ge=0)
    cold_starts_per_run: int = Field(ge=0)
    source: str = Field(min_length=1)
    basis: str = ""
    date: str = Field(min_length=1)

    _date_as_text = field_validator("date", mode="before")(_iso_date)


class VlmProfile(EndpointProfile):
    seconds_per_summary: float = Field(ge=0)


class TimeProfile(_Strict):
    yolo: EndpointProfile
    whisper: EndpointProfile
    vlm: VlmProfile

    def of(self, endpoint: str) -> EndpointProfile:
        return getattr(self, endpoint)


def parse_prices(text: str, where: str) -> PriceTable:
    """The price table in `text` (YAML); ConfigError naming `where` and the bad key."""
    table = _parse(PriceTable, text, where)
    for endpoint in ENDPOINTS:
        if endpoint not in table.endpoints:
            raise ConfigError(f"{where}: key 'endpoints.{endpoint}': missing; name the pool it runs on")
        if table.endpoints[endpoint] not in table.pools:
            raise ConfigError(
                f"{where}: key 'endpoints.{endpoint}': pool {table.endpoints[endpoint]!r} "
                f"is not listed under 'pools' (known: {', '.join(table.pools)})"
            )
    return table


def parse_profile(text: str, where: str) -> TimeProfile:
    """The time profile in `text` (YAML); ConfigError naming `where` and the bad key."""
    profile = _parse(TimeProfile, text, where)
    for endpoint, unit in UNITS.items():
        if profile.of(endpoint).unit != unit:
            raise ConfigError(f"{where}: key '{endpoint}.unit': must be {unit!r} for {endpoint}")
    return profile


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], text: str, where: str) -> _Model:
    data = yaml_mapping(text, where)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: key '{key}': unknown key") from None
        if err["type"] == "missing":
            raise ConfigError(f"{where}: key '{key}': missing") from None
        got = repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        raise ConfigError(f"{where}: key '{key}': {err['msg']} (got {got})") from None


# -- what a video is, as far as cost goes ---------------------------------------------


class MediaFacts(BaseModel):
    """The facts of a video the plan depends on (a MediaInfo has them all)."""

    name: str
    duration_s: float = Field(ge=0)
    fps: float | None = Field(None, gt=0)
    has_audio: bool
    has_video: bool = True
    source: Literal["probe", "assumed"] = "probe"

    @classmethod
    def of(cls, media: MediaInfo) -> MediaFacts:
        return cls(name=media.file_name, duration_s=media.duration_s, fps=media.fps, has_audio=media.has_audio,
                   has_video=media.has_video)

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


# -- captions: the real policy, replayed ------------------------------------------------


class CaptionCounts(BaseModel):
    """Captions the policy makes for one video: bounds, and the exact count when the
    caption candidates were decoded."""

    candidates: int
    min: int
    typical: int
    max: int
    exact: int | None = None

    @property
    def chosen(self) -> int:
        return self.exact if self.exact is not None else self.typical


def policy_settings(settings: Settings) -> PolicySettings:
    # The same mapping the pipeline's caption gate uses.
    return PolicySettings(
        min_gap_s=settings.caption_min_gap_s,
        max_gap_s=settings.caption_max_gap_s,
        scene_threshold=settings.caption_scene_threshold,
        trigger_classes=tuple(settings.caption_trigger_classes),
        max_per_minute=settings.caption_max_per_minute,
    )


def count_captions(frames: Iterable[tuple[float, np.ndarray]], settings: Settings) -> int:
    """Captions the policy makes over (t, signature) candidates in time order. Trigger
    classes need detections, which an estimate does not have: none is ever visible."""
    policy = CaptionPolicy(policy_settings(settings))
    return sum(1 for t, signature in frames if policy.decide(t, signature, set()) is not None)


def caption_bounds(media: MediaFacts, settings: Settings) -> CaptionCounts:
    """min: a static picture; typical: a cut every 20 s with small motion in between;
    max: a picture that changes completely at every candidate. All three from the policy."""
    rate = min(settings.caption_fps, media.fps) if media.fps else settings.caption_fps
    n = expected_frames(media.duration_s, settings.caption_fps, media.fps)
    times = [i / rate for i in range(n)]
    static = np.full((8, 8), 0.5, np.float32)
    rng = np.random.default_rng(0)  # independent uniform grids differ by ~1/3: always a scene change
    return CaptionCounts(
        candidates=n,
        min=count_captions(((t, static) for t in times), settings),
        typical=count_captions(((t, _typical_signature(t)) for t in times), settings),
        max=count_captions(((t, rng.random((8, 8), np.float32)) for t in times), settings),
    )


def _typical_signature(t: float) -> np.ndarray:
    scene, into = divmod(t, TYPICAL_SCENE_S)
    base = 0.25 if scene % 2 == 0 else 0.75  # consecutive scenes differ by 0.5
    return np.full((8, 8), base + TYPICAL_DRIFT_PER_S * into, np.float32)


# -- work and its cost ------------------------------------------------------------------


class Work(BaseModel):
    """What one plan sends to one endpoint."""

    jobs: int = 0
    items: int = 0  # what EndpointUsage.items counts: frames, audio chunks, VLM requests
    units: float = 0.0  # what seconds_per_unit multiplies: images, audio seconds, captions
    summaries: int = 0

    def __add__(self, other: Work) -> Work:
        return Work(jobs=self.jobs + other.jobs, items=self.items + other.items,
                    units=self.units + other.units, summaries=self.summaries + other.summaries)


def configured_work(media: MediaFacts, settings: Settings, captions: int) -> dict[str, Work]:
    """The plan `analyze` follows; `captions` is how many the policy makes (caption_bounds)."""
    plan = make_plan(media, settings)  # reads only duration_s, fps and has_audio
    work = {endpoint: Work() for endpoint in ENDPOINTS}
    if plan.detect_frames:
        work["yolo"] = Work(jobs=plan.detect_jobs, items=plan.detect_frames, units=plan.detect_frames)
    if plan.audio_chunks:
        work["whisper"] = Work(jobs=plan.audio_chunks, items=plan.audio_chunks, units=media.duration_s)
    captions = captions if settings.caption else 0
    summaries = 1 if settings.summary else 0
    if captions or summaries:
        requests = captions + summaries
        work["vlm"] = Work(jobs=requests, items=requests, units=captions, summaries=summaries)
    return work


def naive_work(media: MediaFacts, settings: Settings) -> dict[str, Work]:
    """The seed's plan for the same stages (no summary: the seed had none)."""
    work = {endpoint: Work() for endpoint in ENDPOINTS}
    if settings.detect:
        frames = expected_frames(media.duration_s, NAIVE_DETECT_FPS, media.fps)
        work["yolo"] = Work(jobs=frames, items=frames, units=frames)
    if settings.transcribe and media.has_audio:
        work["whisper"] = Work(jobs=1, items=1, units=media.duration_s)
    if settings.caption:
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
        gpu_s = w.units * p.seconds_per_unit + w.jobs * p.seconds_per_request + w.summaries * summary_s
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
        counts = caption_bounds(video, settings) if settings.caption else None
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
        notes=_notes(videos, settings, profile, mode),
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
    notes.append("seconds per item are published benchmarks scaled to each pool, not measured here")
    return notes


# -- measured usage in dollars ----------------------------------------------------------


def dollars_for(usage: Mapping[str, EndpointUsage], prices: PriceTable) -> dict[str, float]:
    """Measured `execution_s` per endpoint at its pool's flex price.

    An upper bound of the work's share of the bill where a worker holds several jobs at
    once (vidagent's YOLO and Whisper shims take 16 and 4, vLLM up to 32): each job's
    executionTime runs while the others wait, and the worker bills once. Cold starts and
    idle timeouts are not in executionTime and are not counted. Endpoints the price table
    does not map are left out."""
    return {
        endpoint: round(used.execution_s * prices.pool_of(endpoint).flex_usd_per_s, 6)
        for endpoint, used in usage.items()
        if endpoint in prices.endpoints
    }
