"""The Typer app: commands and their options. Heavy imports happen inside commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import __version__

app = typer.Typer(
    name="vidagent",
    help="A timestamped account of what is seen and said in video files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_STAGES = "Stages"
_SAMPLING = "Sampling"
_MODELS = "Models"
_OUTPUT = "Output"
_BATCH = "Batch and CI"
_STORE = "Object store (media for the segment workers)"


def _version(value: bool) -> None:
    if value:
        print(f"vidagent {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """A timestamped account of what is seen and said in video files."""


@app.command()
def analyze(
    paths: Annotated[
        Optional[list[str]],
        typer.Argument(help="Video or audio files, folders (searched recursively), quoted globs ('clips/**/*.mp4'), or https:// / s3:// URLs.", show_default=False),
    ] = None,
    out: Annotated[
        Optional[Path],
        typer.Option("--out", "-o", help="Output folder; each video gets DIR/<name>/. Default: vidagent-out.", rich_help_panel=_OUTPUT),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c", help="YAML settings file (see configs/default.yaml). Env: VIDAGENT_CONFIG.", rich_help_panel=_OUTPUT),
    ] = None,
    formats: Annotated[
        Optional[list[str]],
        typer.Option("--format", "-f", help="Report files: json, srt, vtt, html, captions_srt, captions_vtt, events_srt, events_vtt; repeat or comma-separate. Default: json,srt,vtt,html.", rich_help_panel=_OUTPUT),
    ] = None,
    html_video: Annotated[
        Optional[str],
        typer.Option("--html-video", help="What report.html plays beside its timeline: source (the video, linked relative to the page), proxy (a small copy that every browser plays, written beside the page, for ProRes, MPEG-2, HEVC…), none. Env: VIDAGENT_HTML_VIDEO. Default: source.", rich_help_panel=_OUTPUT),
    ] = None,
    backend: Annotated[
        Optional[str],
        typer.Option(help="Where models run: local (this process), runpod (serverless endpoints), auto (runpod when the stages' RUNPOD_*_ENDPOINT_ID are set, local when none is). Default: auto.", rich_help_panel=_STAGES),
    ] = None,
    local_endpoints: Annotated[
        Optional[list[str]],
        typer.Option("--local-endpoints", help="Run these stages in this process although others run on RunPod: yolo, whisper, vlm (repeat or comma-separate). Needed when only some RUNPOD_*_ENDPOINT_ID are set. Env: VIDAGENT_LOCAL_ENDPOINTS.", rich_help_panel=_STAGES),
    ] = None,
    runpod_base_url: Annotated[
        Optional[str],
        typer.Option(help="RunPod API base URL, e.g. a `vidagent serve` at http://127.0.0.1:PORT/v2. Env: RUNPOD_BASE_URL.", rich_help_panel=_STAGES),
    ] = None,
    object_store_bucket: Annotated[
        Optional[str],
        typer.Option(help="Bucket local files are uploaded to once (by content hash) for the segment workers: S3, R2, or a RunPod network volume's id. Env: VIDAGENT_OBJECT_STORE_BUCKET.", rich_help_panel=_STORE),
    ] = None,
    object_store_endpoint_url: Annotated[
        Optional[str],
        typer.Option(help="S3-compatible endpoint (R2: https://ACCOUNT.r2.cloudflarestorage.com; RunPod: https://s3api-DATACENTER.runpod.io). Default: AWS S3. Env: VIDAGENT_OBJECT_STORE_ENDPOINT_URL.", rich_help_panel=_STORE),
    ] = None,
    object_store_region: Annotated[
        Optional[str],
        typer.Option(help="The bucket's region (auto for R2, the datacenter id for RunPod). Env: VIDAGENT_OBJECT_STORE_REGION.", rich_help_panel=_STORE),
    ] = None,
    object_store_prefix: Annotated[
        Optional[str],
        typer.Option(help="Key prefix of uploads. Default: vidagent/media. Env: VIDAGENT_OBJECT_STORE_PREFIX.", rich_help_panel=_STORE),
    ] = None,
    object_store_url_ttl_s: Annotated[
        Optional[float],
        typer.Option("--object-store-url-ttl", help="Seconds the presigned URLs workers read stay valid. Default: 10800. Credentials: VIDAGENT_OBJECT_STORE_ACCESS_KEY_ID/_SECRET_ACCESS_KEY, else AWS_* or AWS_PROFILE.", rich_help_panel=_STORE),
    ] = None,
    detect: Annotated[
        Optional[bool],
        typer.Option("--detect/--no-detect", help="Run object detection. Default: on.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    transcribe: Annotated[
        Optional[bool],
        typer.Option("--transcribe/--no-transcribe", help="Run speech transcription. Default: on.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    caption: Annotated[
        Optional[bool],
        typer.Option("--caption/--no-caption", help="Caption frames with the VLM when the policy says (scene change, trigger class, coverage). Default: off.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    summary: Annotated[
        Optional[bool],
        typer.Option("--summary/--no-summary", help="One VLM summary of the video from captions and transcript. Default: off.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    detect_fps: Annotated[
        Optional[float],
        typer.Option(help="Detection frames per second of video. Default: 10.", rich_help_panel=_SAMPLING),
    ] = None,
    detect_size: Annotated[
        Optional[int],
        typer.Option(help="Long side of detection frames in pixels; also YOLO's imgsz. Default: 640.", rich_help_panel=_SAMPLING),
    ] = None,
    audio_chunk_s: Annotated[
        Optional[float],
        typer.Option("--audio-chunk", help="Target seconds of audio per transcription job; cuts fall in pauses. Default: 60.", rich_help_panel=_SAMPLING),
    ] = None,
    yolo_model: Annotated[
        Optional[str],
        typer.Option(help="YOLO weights: name (yolo11m.pt), path, or offline:yolo11n-random. Default: yolo11m.pt.", rich_help_panel=_MODELS),
    ] = None,
    yolo_conf: Annotated[
        Optional[float],
        typer.Option("--conf", help="Minimum detection confidence, 0-1. Default: 0.25.", rich_help_panel=_MODELS),
    ] = None,
    yolo_batch: Annotated[
        Optional[int],
        typer.Option(help="Frames per detection job. Default: 32.", rich_help_panel=_MODELS),
    ] = None,
    caption_trigger_classes: Annotated[
        Optional[list[str]],
        typer.Option("--caption-trigger", help="Caption when this detected label appears (repeat or comma-separate), e.g. person.", rich_help_panel=_SAMPLING),
    ] = None,
    vlm_model: Annotated[
        Optional[str],
        typer.Option(help="VLM model name as the server knows it. Default: Qwen/Qwen3-VL-8B-Instruct.", rich_help_panel=_MODELS),
    ] = None,
    vlm_base_url: Annotated[
        Optional[str],
        typer.Option(help="Any OpenAI-compatible server (vLLM, SGLang, Ollama) instead of RunPod's vLLM route.", rich_help_panel=_MODELS),
    ] = None,
    whisper_model: Annotated[
        Optional[str],
        typer.Option(help="Whisper model: name (turbo = large-v3-turbo, small…), folder, or offline:tiny.en. Default: turbo", rich_help_panel=_MODELS),
    ] = None,
    language: Annotated[
        Optional[str],
        typer.Option(help="Spoken language code (en, de…); detected when not given.", rich_help_panel=_MODELS),
    ] = None,
    audio_stream: Annotated[
        Optional[str],
        typer.Option(help="Audio stream to transcribe: auto (the one that carries speech; skipped ones are named), all, or N (0 = first audio stream). Default: auto.", rich_help_panel=_MODELS),
    ] = None,
    word_timestamps: Annotated[
        Optional[bool],
        typer.Option("--word-timestamps/--no-word-timestamps", help="Add per-word times to the transcript. Default: off.", show_default=False, rich_help_panel=_MODELS),
    ] = None,
    speakers: Annotated[
        Optional[bool],
        typer.Option("--speakers/--no-speakers", help="Who speaks when: a speaker on every segment and word, in subtitles, HTML and search (needs vidagent's whisper image on RunPod). Default: off.", show_default=False, rich_help_panel=_MODELS),
    ] = None,
    num_speakers: Annotated[
        Optional[int],
        typer.Option(help="Exactly this many speakers (default: estimated).", rich_help_panel=_MODELS),
    ] = None,
    min_speakers: Annotated[
        Optional[int],
        typer.Option(help="At least this many speakers when estimating.", rich_help_panel=_MODELS),
    ] = None,
    max_speakers: Annotated[
        Optional[int],
        typer.Option(help="At most this many speakers when estimating.", rich_help_panel=_MODELS),
    ] = None,
    match_speakers: Annotated[
        Optional[bool],
        typer.Option("--match-speakers/--no-match-speakers", help="One voice, one name across the batch's videos: a speaker who sounds like one of an earlier input (in input order) takes that speaker's name; each match is printed and recorded in report.json. Turns on --speakers. Default: off.", show_default=False, rich_help_panel=_MODELS),
    ] = None,
    segments: Annotated[
        Optional[str],
        typer.Option("--segments", help="Segment path: workers decode stretches of the video themselves, this process only plans and merges: on, off, auto (on when RUNPOD_SEGMENT_ENDPOINT_ID is set and the input is a URL or an object store is configured). Default: auto.", rich_help_panel=_STAGES),
    ] = None,
    segment_seconds: Annotated[
        Optional[float],
        typer.Option("--segment-seconds", help="Seconds per segment, cut at the nearest keyframe. Default: the duration over the endpoint's workers, 10-600 s.", rich_help_panel=_STAGES),
    ] = None,
    manifest: Annotated[
        Optional[Path],
        typer.Option(help="More inputs: a list of paths, a CSV with a 'path' column, or JSON lines; other columns are per-video settings (language, detect_fps…).", rich_help_panel=_BATCH),
    ] = None,
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, help="Videos in flight at once (they share each endpoint's concurrency).", rich_help_panel=_BATCH)
    ] = 1,
    shard: Annotated[
        Optional[str],
        typer.Option(help="Run only shard I of N (e.g. 2/4): split a batch across CI machines, by a stable hash of each path.", rich_help_panel=_BATCH),
    ] = None,
    max_cost_usd: Annotated[
        Optional[float],
        typer.Option("--max-cost", help="USD budget: refuse to start if the estimate is over it; stop cleanly (reports kept, jobs cancelled) when measured spend reaches it.", rich_help_panel=_BATCH),
    ] = None,
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first failed video (jobs in flight are cancelled).", rich_help_panel=_BATCH)
    ] = False,
    index: Annotated[
        Optional[str],
        typer.Option("--index", help="Search index each report is added to: a file or a folder (its index.sqlite; share one across runs) or a postgresql:// URL. Default: <out>/index.sqlite.", rich_help_panel=_OUTPUT),
    ] = None,
    cache: Annotated[
        Optional[bool],
        typer.Option("--cache/--no-cache", help="Reuse finished jobs from the job cache, so a rerun redoes only unfinished work. Default: on.", show_default=False, rich_help_panel=_BATCH),
    ] = None,
    progress: Annotated[
        str,
        typer.Option("--log-format", "--progress", help="What goes to stderr: auto (bars on a terminal, lines otherwise), bars, lines, json (one event per line), none.", rich_help_panel=_BATCH),
    ] = "auto",
) -> None:
    """Analyse videos (and audio files): detections, transcript and captions on one timeline,
    written as JSON, SRT, WebVTT and an HTML report.

    Exit codes: 0 every input analysed; 1 some inputs failed or got a partial report (the
    others are still written); 2 usage or configuration error; 130 interrupted.
    """
    if not paths and manifest is None:
        raise typer.BadParameter("give video files, folders or globs, or --manifest FILE", param_hint="PATHS")
    import asyncio

    from ..batch import parse_shard, run_batch
    from ..config import load_settings
    from ..errors import ConfigError, Interrupted
    from .progress import make_progress
    from .signals import cancellable

    overrides = dict(
        out=out,
        formats=_split(formats),
        html_video=html_video,
        backend=backend,
        local_endpoints=_split(local_endpoints),
        cache=cache,
        index=index,
        max_cost_usd=max_cost_usd,
        runpod_base_url=runpod_base_url,
        object_store_bucket=object_store_bucket,
        object_store_endpoint_url=object_store_endpoint_url,
        object_store_region=object_store_region,
        object_store_prefix=object_store_prefix,
        object_store_url_ttl_s=object_store_url_ttl_s,
        detect=detect,
        transcribe=transcribe,
        caption=caption,
        summary=summary,
        caption_trigger_classes=_split(caption_trigger_classes),
        vlm_model=vlm_model,
        vlm_base_url=vlm_base_url,
        detect_fps=detect_fps,
        detect_size=detect_size,
        audio_chunk_s=audio_chunk_s,
        yolo_model=yolo_model,
        yolo_conf=yolo_conf,
        yolo_batch=yolo_batch,
        whisper_model=whisper_model,
        language=language,
        word_timestamps=word_timestamps,
        speakers=speakers,
        num_speakers=num_speakers,
        min_speakers=min_speakers,
        max_speakers=max_speakers,
        match_speakers=match_speakers,
        audio_stream=int(audio_stream) if audio_stream and audio_stream.isdigit() else audio_stream,
        segments=segments,
        segment_seconds=segment_seconds,
    )
    settings = load_settings(config, overrides)
    if not (settings.detect or settings.transcribe or settings.caption):
        raise ConfigError("--no-detect and --no-transcribe together leave nothing to do")
    shard_range = parse_shard(shard) if shard else None
    display = make_progress(progress)
    from ..segments.source import as_input

    work = run_batch([as_input(p) for p in paths or []], settings, display, manifest=manifest, shard=shard_range, jobs=jobs, fail_fast=fail_fast)
    try:
        with display:
            outcomes = asyncio.run(cancellable(work))
        display.summary(outcomes, settings.out / "index.json" if outcomes else None)
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise Interrupted("interrupted; reports of the videos that finished are kept") from None
    raise typer.Exit(1 if any(not o.ok for o in outcomes) else 0)


cache_app = typer.Typer(help="The job cache that lets reruns skip finished work.", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("info")
def cache_info(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file.")] = None,
) -> None:
    """Where the cache is, how many job results it holds and their size."""
    from ..cache import JobCache
    from ..config import load_settings
    from ..workers.catalog import cache_dir

    info = JobCache(load_settings(config).cache_dir or cache_dir()).info()
    print(f"{info.path}: {info.entries} job results, {info.bytes / 1e6:.1f} MB")


@cache_app.command("clear")
def cache_clear(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="YAML settings file.")] = None,
) -> None:
    """Delete every cached job result (models and reports are kept)."""
    from ..cache import JobCache
    from ..config import load_settings
    from ..workers.catalog import cache_dir

    removed = JobCache(load_settings(config).cache_dir or cache_dir()).clear()
    print(f"removed {removed} job results")


@app.command()
def schema() -> None:
    """Print the JSON Schema of report.json."""
    import json

    from ..report.model import Report

    print(json.dumps(Report.model_json_schema(), indent=2))


@app.command()
def doctor(
    config: Annotated[
        Optional[Path], typer.Option("--config", "-c", help="YAML settings file to check.")
    ] = None,
) -> None:
    """Check ffmpeg, model libraries, models, GPU and configuration."""
    from .doctor import run_doctor

    raise typer.Exit(run_doctor(config))


def _split(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [part.strip() for value in values for part in value.split(",") if part.strip()]



def _register_commands() -> None:
    # Each lives in its own module and imports what it needs only when it runs.
    from .cost import cost_estimate_command
    from .deploy import deploy_command
    from .report import report_command
    from .search import ask_command, index_command, search_command
    from .serve import serve_command
    from .speakers import speakers_app

    app.command("cost-estimate")(cost_estimate_command)
    app.command("deploy")(deploy_command)
    app.command("report")(report_command)
    app.command("serve")(serve_command)
    app.command("index")(index_command)
    app.command("search")(search_command)
    app.command("ask")(ask_command)
    app.add_typer(speakers_app, name="speakers")


_register_commands()
