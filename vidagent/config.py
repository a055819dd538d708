"""Settings: one flat model, filled from four layers.

Precedence, highest first: command-line flag > environment (``VIDAGENT_<FIELD>``) >
user YAML file (``--config`` or ``VIDAGENT_CONFIG``) > the defaults below, which
``configs/default.yaml`` mirrors (a test keeps the two equal).

Keys are flat so that each one has exactly one flag, one variable and one YAML key.
RunPod's keys read RunPod's usual variables (``RUNPOD_API_KEY``, ``RUNPOD_YOLO_ENDPOINT_ID``,
…), and a ``.env`` file in the working directory fills in variables the environment lacks.
"""

from __future__ import annotations

import json
import os
import typing
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from .errors import ConfigError

ENV_PREFIX = "VIDAGENT_"
OutputFormat = Literal["json", "srt", "vtt", "captions_srt", "captions_vtt", "events_srt", "events_vtt", "html"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    backend: Literal["auto", "local", "runpod"] = Field(
        "auto",
        description="Where models run: local (in-process), runpod (serverless endpoints), "
        "auto (runpod when endpoint ids are set for the stages that run, local when none is; "
        "some but not all is an error unless local_endpoints names the rest).",
    )
    out: Path = Field(Path("vidagent-out"), description="Output folder; one subfolder per video.")
    formats: list[OutputFormat] = Field(
        default_factory=lambda: ["json", "srt", "vtt", "html"], description="Report files to write."
    )
    html_video: Literal["source", "proxy", "none"] = Field(
        "source", description="What report.html plays beside its timeline: source (the video itself, linked by a path "
        "relative to the page), proxy (a small H.264/AAC copy that every browser plays, written beside the page; for "
        "codecs browsers cannot play), none (no player).")
    cache: bool = Field(True, description="Reuse finished jobs from the job cache (resume after a crash).")
    cache_dir: Path | None = Field(None, description="Job cache folder (default: ~/.cache/vidagent).")
    detect: bool = Field(True, description="Run object detection.")
    transcribe: bool = Field(True, description="Run speech transcription.")
    caption: bool = Field(False, description="Caption frames with the VLM (Qwen3-VL), when the policy says.")
    summary: bool = Field(False, description="Ask the VLM for one summary of the video at the end.")

    detect_fps: float = Field(10.0, gt=0, le=120, description="Detection frames per second of video.")
    detect_size: int = Field(640, ge=32, le=4096, description="Long side of detection frames, pixels.")
    jpeg_quality: int = Field(90, ge=10, le=100, description="JPEG quality of sampled frames.")
    audio_chunk_s: float = Field(
        60.0, ge=5, le=3600, description="Target seconds of audio per transcription job; cuts fall in silence, and silences over 1 s are shortened to 1 s first."
    )

    yolo_model: str = Field("yolo11m.pt", description="YOLO weights: name, path or offline:<name>.")
    yolo_conf: float = Field(0.25, ge=0, le=1, description="Minimum detection confidence.")
    yolo_iou: float = Field(0.7, ge=0, le=1, description="NMS IoU threshold.")
    yolo_classes: list[int] | None = Field(None, description="Keep only these class ids (all if unset).")
    yolo_max_det: int = Field(300, ge=1, description="Maximum detections per frame.")
    yolo_batch: int = Field(32, ge=1, le=256, description="Frames per detection job.")

    caption_fps: float = Field(1.0, gt=0, le=10, description="Caption candidates per second of video.")
    caption_size: int = Field(768, ge=64, le=2048, description="Long side of caption frames, pixels.")
    caption_min_gap_s: float = Field(2.0, ge=0, description="Never caption sooner than this after the last.")
    caption_max_gap_s: float = Field(10.0, gt=0, description="Caption again after this long if the picture changed at all.")
    caption_scene_threshold: float = Field(0.12, ge=0, le=1, description="Picture change (0-1) that counts as a new scene.")
    caption_trigger_classes: list[str] = Field(default_factory=list, description="Detected labels whose appearance triggers a caption.")
    caption_max_per_minute: int = Field(12, ge=1, description="Hard cap on captions per minute of video.")
    caption_grounding: bool = Field(True, description="Give the VLM the frame's detections and nearby speech.")
    caption_structured: bool = Field(True, description="Ask for JSON answers (caption, people, actions, text); plain text if unsupported.")
    caption_prompt: Path | None = Field(None, description="Prompt file for captions (default: configs/prompts/caption.txt).")
    summary_prompt: Path | None = Field(None, description="Prompt file for the summary (default: configs/prompts/summary.txt).")
    vlm_model: str = Field("Qwen/Qwen3-VL-8B-Instruct", description="VLM model name as the server knows it, or offline:qwen3-vl-tiny.")
    vlm_base_url: str | None = Field(None, description="Any OpenAI-compatible server; default: RunPod's route of RUNPOD_VLM_ENDPOINT_ID.")
    vlm_api_key: SecretStr | None = Field(None, description="Key for vlm_base_url (default: RUNPOD_API_KEY).")
    vlm_max_tokens: int = Field(256, ge=1, le=8192, description="Most tokens per VLM answer.")
    summary_max_tokens: int = Field(600, ge=1, le=8192, description="Most tokens of the summary's answer.")
    vlm_concurrency: int = Field(8, ge=1, le=256, description="VLM requests in flight.")

    whisper_model: str = Field(
        "turbo", description="Whisper model: name (turbo is large-v3-turbo, the name RunPod's official worker accepts), local path or offline:<name>."
    )
    language: str | None = Field(None, description="Spoken language code; detected if unset.")
    language_detection: Literal["once", "per_chunk"] = Field(
        "once", description="Detect the language once (first confident chunk) and keep it, or per chunk (mixed-language audio).")
    audio_stream: Literal["auto", "all"] | int = Field(
        "auto", description="Audio stream to transcribe: auto (the one where Silero VAD hears most speech), all, or N (0 = the first audio stream).")
    word_timestamps: bool = Field(False, description="Include per-word timings in the transcript.")
    enable_vad: bool = Field(True, description="Skip non-speech with Silero VAD before decoding.")
    segment_pause_s: float = Field(
        0.8, gt=0, le=10, description="A pause between words this long starts a new transcript segment.")
    speakers: bool = Field(False, description="Diarize: who speaks when, on every segment and word (on the Whisper endpoint; needs vidagent's whisper image, not RunPod's official one).")
    num_speakers: int | None = Field(None, ge=1, le=50, description="Exactly this many speakers (unset: estimated).")
    min_speakers: int | None = Field(None, ge=1, le=50, description="At least this many speakers when estimating.")
    max_speakers: int | None = Field(None, ge=1, le=50, description="At most this many speakers when estimating.")
    speaker_threshold: float = Field(0.15, gt=0, lt=1, description="Cosine distance under which two stretches of speech count as one voice (offline model; tuned in docs/benchmarks.md).")
    match_speakers: bool = Field(False, description="Give one voice one name across the videos of a batch (input order; each match is recorded in the report and printed). Turns on speakers.")
    match_threshold: float = Field(0.90, gt=0, lt=1, description="Cosine similarity of two speakers' voices at or above which --match-speakers takes them for one (offline model; measured in docs/benchmarks.md).")
    diarization_backend: Literal["auto", "offline", "pyannote"] = Field(
        "auto", description="Speaker model on the whisper worker: pyannote (the endpoint image), offline (resemblyzer's encoder, shipped on PyPI), auto (pyannote where installed).")

    segments: Literal["auto", "on", "off"] = Field(
        "auto", description="Segment path (the fleet decodes; the client only plans and merges): on, off, or "
        "auto (on when the segment endpoint runs on RunPod or serve and the input is a URL or an object store is "
        "configured).")
    segment_seconds: float | None = Field(
        None, ge=1, le=600, description="Length of a segment, cut at the nearest keyframe; unset: the duration "
        "divided by segment_workers (one segment per worker, so they finish together), at least 10 s, at most 600 s.")
    segment_workers: int = Field(
        0, ge=0, le=1000, description="Workers the segment endpoint runs at once, for sizing segments; 0: ask the "
        "endpoint's /health (idle + running workers), 4 when it cannot say.")
    job_retries: int = Field(
        2, ge=0, le=10, description="Times a job is sent again after its worker broke (crash, out of memory); bad input is never resent.")
    stall_timeout_s: float = Field(
        900, gt=0, description="Fail a video that makes no progress (no item extracted, no job finished) for this long.")

    index: str | None = Field(None, description="Search index that analyze adds each report to and search/ask read: a file, a folder (its index.sqlite) or a postgresql:// URL (default: <out>/index.sqlite).")
    summary_part_chars: int = Field(12_000, ge=100, le=500_000, description="Material per summary request, characters: a longer video is summarised part by part, then as a whole.")
    ask_max_moments: int = Field(12, ge=1, le=100, description="Most moments `vidagent ask` sends to the VLM as evidence.")
    ask_max_frames: int = Field(4, ge=0, le=16, description="Most frames of those moments it sends as images.")

    max_cost_usd: float | None = Field(None, gt=0, description="Refuse to start over this estimate; stop when measured spend reaches it.")
    prices_file: Path | None = Field(None, description="Price table (default: configs/prices.yaml).")
    profile_file: Path | None = Field(None, description="Per-item time profile (default: configs/profile.yaml).")

    runpod_api_key: SecretStr | None = Field(None, description="RunPod API key (never printed).")
    runpod_base_url: str = Field(
        "https://api.runpod.ai/v2", description="RunPod serverless API, or `vidagent serve`'s."
    )
    runpod_yolo_endpoint_id: str | None = Field(None, description="Endpoint id of the YOLO worker.")
    runpod_whisper_endpoint_id: str | None = Field(None, description="Endpoint id of the Whisper worker.")
    runpod_vlm_endpoint_id: str | None = Field(None, description="Endpoint id of the vLLM (Qwen3-VL) worker.")
    runpod_segment_endpoint_id: str | None = Field(None, description="Endpoint id of the segment worker (decode, YOLO and Whisper in one).")
    runpod_concurrency: int = Field(32, ge=1, le=256, description="Jobs in flight per endpoint.")
    runpod_execution_timeout_s: float = Field(
        600, gt=0, description="A job running longer is stopped by RunPod (TIMED_OUT)."
    )
    runpod_ttl_s: float = Field(3600, gt=0, description="A job not finished this long after submission expires.")
    runpod_request_timeout_s: float = Field(30, gt=0, description="Timeout of each HTTP request.")
    runpod_max_retries: int = Field(6, ge=0, le=20, description="Retries of one request that cannot run a job twice (a 429, a connection never made; 5xx and timeouts of reads and cancels).")
    # -- where each stage runs; how long a job may wait for a worker ----------------------
    local_endpoints: list[Literal["yolo", "whisper", "vlm", "segment"]] = Field(
        default_factory=list,
        description="Stages run in this process although the backend is runpod (yolo, whisper, vlm): "
        "the explicit way to run with only some endpoint ids set.",
    )
    runpod_queue_timeout_s: float | None = Field(
        600, gt=0, description="A job no worker has taken this long after submission, on an endpoint "
        "with no worker running, is cancelled and fails with the endpoint's health; null: wait up to runpod_ttl_s.",
    )

    # -- the object store that local files are published to for the segment workers ---------
    object_store_bucket: str | None = Field(
        None, description="Bucket local files are uploaded to (once, by content hash) for the segment workers: "
        "an S3, Cloudflare R2 or RunPod network-volume (its id) bucket; unset: no object store.")
    object_store_endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint: https://<account>.r2.cloudflarestorage.com, "
        "https://s3api-<datacenter>.runpod.io; unset: AWS S3 (or boto3's AWS_ENDPOINT_URL_S3).")
    object_store_region: str | None = Field(
        None, description="Region of the bucket: an AWS region, auto for R2, the datacenter id (EU-RO-1) for RunPod; "
        "unset: boto3's own (AWS_REGION, ~/.aws/config).")
    object_store_prefix: str = Field(
        "vidagent/media", pattern=r"^[A-Za-z0-9!_.*'()/-]*$",
        description="Key prefix of uploads: objects are <prefix>/<sha256 of the file>.<ext>.")
    object_store_url_ttl_s: float = Field(
        10_800, ge=1, le=604_800, description="Lifetime of the presigned GET URLs workers read, seconds "
        "(SigV4 allows at most 7 days); longer than a job may wait and run (runpod_ttl_s + runpod_execution_timeout_s).")
    object_store_access_key_id: SecretStr | None = Field(
        None, description="Access key id for the object store, over boto3's chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, ~/.aws).")
    object_store_secret_access_key: SecretStr | None = Field(
        None, description="Its secret (never printed, never sent but to the store's endpoint).")

    @model_validator(mode="before")
    @classmethod
    def _matching_needs_speakers(cls, data: Any) -> Any:
        """--match-speakers turns speakers on, unless they were turned off, which is an error."""
        if isinstance(data, dict) and data.get("match_speakers"):
            if data.get("speakers") is False:
                raise ValueError("match_speakers needs speakers: drop --no-speakers (or speakers: false)")
            data = {**data, "speakers": True}
        return data

    def endpoint_id(self, endpoint: str) -> str | None:
        return getattr(self, f"runpod_{endpoint}_endpoint_id", None)


FIELDS = tuple(Settings.model_fields)


SECRET_FIELDS = frozenset({"runpod_api_key", "vlm_api_key", "object_store_access_key_id",
                           "object_store_secret_access_key"})


def env_name(field: str) -> str:
    """VIDAGENT_DETECT_FPS for most keys; RunPod's keys use RunPod's names (RUNPOD_API_KEY)."""
    return field.upper() if field.startswith("runpod_") else ENV_PREFIX + field.upper()


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build Settings from the layers; raise ConfigError naming the bad file, variable or key."""
    if environ is None:
        environ = {**read_dotenv(Path(".env")), **os.environ}
    if config_file is None and environ.get(ENV_PREFIX + "CONFIG"):
        config_file = Path(environ[ENV_PREFIX + "CONFIG"])

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_file is not None:
        for key, value in read_yaml_file(config_file, "config file", "setting: value").items():
            merged[key], sources[key] = value, f"{config_file}: key '{key}'"
    for field in FIELDS:
        raw = environ.get(env_name(field))
        if raw is not None:
            merged[field], sources[field] = _parse_env_value(field, raw), env_name(field)
    for key, value in (overrides or {}).items():
        if value is not None:
            merged[key], sources[key] = value, f"option --{key.replace('_', '-')}"

    try:
        return Settings(**merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # a rule between settings (model validator): its message names them
            raise ConfigError(err["msg"].removeprefix("Value error, ")) from None
        field = str(err["loc"][0])
        where = sources.get(field, field)
        if err["type"] == "extra_forbidden":
            raise ConfigError(
                f"{where}: unknown setting; known settings are listed by `vidagent analyze --help`"
            ) from None
        got = "" if field in SECRET_FIELDS else f" (got {err.get('input')!r})"
        raise ConfigError(f"{where}: {err['msg']}{got}") from None


def read_yaml_file(path: Path, what: str, shape: str = "key: value") -> dict[str, Any]:
    """The YAML mapping in `path`; one-line ConfigErrors that name the file and say what
    it is (`what`: "config file", "deploy settings") when it is missing or unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc.strerror})") from None
    return yaml_mapping(text, str(path), shape)


def yaml_mapping(text: str, where: str, shape: str = "key: value") -> dict[str, Any]:
    """A YAML document that must be a mapping (an empty one is {}); one-line ConfigErrors
    naming `where` and the line for bad YAML. Every settings file goes through this."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}:{line} is not valid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of {shape} at the top level")
    return data


def env_as_text(value: Any) -> Any:
    """A YAML mapping of environment variables as text: YAML reads `1` and `true` as a
    number and a boolean, an environment holds only strings (`true`, not `True`)."""
    if isinstance(value, Mapping):
        return {str(k): (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in value.items()}
    return value


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (optional `export`, quotes, # comments); a missing file is empty."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (FileNotFoundError, IsADirectoryError):
        return {}
    values = {}
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


_TEXT_TYPES = (str, str | None, SecretStr | None, Path)


def _parse_env_value(field: str, raw: str) -> Any:
    """Text settings take the value as it is; others read it as YAML: `5`, `true`, `[0, 2]`,
    and a comma-separated `json,srt` as a list."""
    if Settings.model_fields[field].annotation in _TEXT_TYPES:
        return raw
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw
    if isinstance(value, str) and "," in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, str) and typing.get_origin(Settings.model_fields[field].annotation) is list:
        return [value]  # one item of a list setting: VIDAGENT_FORMATS=json
    return value


def defaults_as_yaml() -> str:
    """The defaults as a commented YAML file (what configs/default.yaml holds)."""
    lines = [
        "# vidagent defaults. Copy what you change into your own file and pass --config FILE.",
        "# Precedence: flag > VIDAGENT_<KEY> environment variable > --config file > these.",
        "",
    ]
    for name, value in Settings().model_dump(mode="json").items():
        if name in SECRET_FIELDS:
            lines.append(f"# {Settings.model_fields[name].description} Set {env_name(name)}.")
            continue
        lines.append(f"# {Settings.model_fields[name].description}")
        lines.append(f"{name}: {json.dumps(value)}")
    return "\n".join(lines) + "\n"
