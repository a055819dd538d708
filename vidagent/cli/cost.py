"""`vidagent cost-estimate`: the bill before it comes. The numbers and the tables' files
are vidagent/cost's; this module probes videos, reads reports, and prints."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Optional

import typer


_INPUT = "Input"
_STAGES = "Stages"
_SAMPLING = "Sampling"
_TABLES = "Prices and profile"
_FLEET = "Segment path (a fleet of workers)"

JSON_HELP = """\
--json prints one object; seconds are float seconds, money is USD:

  estimate_version: "1"

  videos[]: name, duration_s, fps, has_audio, source (probe or assumed),
  captions (candidates, min, typical, max, exact; null when captions are off)

  duration_s (all videos), captions_mode (off, bounds or exact)

  configured, naive: endpoints.yolo|whisper|vlm (pool, jobs, items, units,
  gpu_s, cold_starts, cold_start_s, billed_s, usd_flex, usd_active) and
  total (jobs, items, gpu_s, cold_starts, billed_s, usd_flex, usd_active)

  configured_usd_flex_min, configured_usd_flex_max: with the fewest and the
  most captions the policy can make

  saving_usd_flex, saving_fraction, configured_usd_flex_per_hour,
  naive_usd_flex_per_hour, figures.yolo|whisper|vlm (provenance: measured or
  published, gpu, date, source, pool, on_pool_gpu), notes[] (the assumptions
  behind the numbers)

With --workers N, fleet: the segment path next to the single-client path:
  workers, uplink_mbps, uploaded_already, segment and single (wall_s,
  client_cpu_s, uploaded_bytes, upload_s, worker_s, cold_starts, billed_s,
  usd_flex), work (segments, segment_s, waves, decode_s, inference_s,
  overhead_s of one segment), faster and cheaper (segment, single or same),
  speedup, pool, figures, notes

--profile-from REPORT... prints (or --output writes) a time profile measured from
the reports' usage instead: files, or folders searched for report.json."""


def cost_estimate_command(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(metavar="VIDEO", help="Video files to estimate (probed, not decoded); with --profile-from, reports.", show_default=False),
    ] = None,
    duration: Annotated[
        Optional[str],
        typer.Option(help="Estimate a video of this length instead: 90s, 10m, 1h, 1h30m or seconds. Assumes 30 fps with audio.", rich_help_panel=_INPUT),
    ] = None,
    config: Annotated[
        Optional[Path],
        typer.Option("--config", "-c", help="YAML settings file, as for analyze. Env: VIDAGENT_CONFIG.", rich_help_panel=_INPUT),
    ] = None,
    captions: Annotated[
        str,
        typer.Option("--captions", help="Caption count: bounds (from the policy, no decoding) or exact (decode the caption frames of each VIDEO and run the policy).", rich_help_panel=_INPUT),
    ] = "bounds",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of the table (fields below).", rich_help_panel=_INPUT)
    ] = False,
    prices: Annotated[
        Optional[Path],
        typer.Option(help="Price table (YAML). Default: configs/prices.yaml.", rich_help_panel=_TABLES),
    ] = None,
    profile: Annotated[
        Optional[Path],
        typer.Option(help="Per-item time profile (YAML). Default: configs/profile.yaml.", rich_help_panel=_TABLES),
    ] = None,
    profile_from: Annotated[
        bool,
        typer.Option("--profile-from", help="The arguments are reports (or folders of them): make a time profile from their measured usage; figures they lack come from --profile.", rich_help_panel=_TABLES),
    ] = False,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="With --profile-from: write the profile here instead of printing it.", rich_help_panel=_TABLES),
    ] = None,
    detect: Annotated[
        Optional[bool],
        typer.Option("--detect/--no-detect", help="Object detection. Default: on.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    transcribe: Annotated[
        Optional[bool],
        typer.Option("--transcribe/--no-transcribe", help="Speech transcription. Default: on.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    caption: Annotated[
        Optional[bool],
        typer.Option("--caption/--no-caption", help="VLM captions when the policy says. Default: off.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    summary: Annotated[
        Optional[bool],
        typer.Option("--summary/--no-summary", help="One VLM summary per video. Default: off.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    speakers: Annotated[
        Optional[bool],
        typer.Option("--speakers/--no-speakers", help="Diarization on the whisper endpoint (its GPU seconds are added). Default: off.", show_default=False, rich_help_panel=_STAGES),
    ] = None,
    detect_fps: Annotated[
        Optional[float], typer.Option(help="Detection frames per second of video. Default: 10.", rich_help_panel=_SAMPLING)
    ] = None,
    yolo_batch: Annotated[
        Optional[int], typer.Option(help="Frames per detection job. Default: 32.", rich_help_panel=_SAMPLING)
    ] = None,
    audio_chunk_s: Annotated[
        Optional[float],
        typer.Option("--audio-chunk", help="Seconds of audio per transcription job. Default: 60.", rich_help_panel=_SAMPLING),
    ] = None,
    caption_fps: Annotated[
        Optional[float], typer.Option(help="Caption candidates per second of video. Default: 1.", rich_help_panel=_SAMPLING)
    ] = None,
    caption_min_gap_s: Annotated[
        Optional[float], typer.Option("--caption-min-gap", help="Never caption sooner than this after the last. Default: 2.", rich_help_panel=_SAMPLING)
    ] = None,
    caption_max_gap_s: Annotated[
        Optional[float], typer.Option("--caption-max-gap", help="Caption again after this long if the picture changed. Default: 10.", rich_help_panel=_SAMPLING)
    ] = None,
    caption_max_per_minute: Annotated[
        Optional[int], typer.Option(help="Hard cap on captions per minute. Default: 12.", rich_help_panel=_SAMPLING)
    ] = None,
    workers: Annotated[
        Optional[int],
        typer.Option("--workers", min=1, help="Price the segment path on this many segment workers next to the single-client path, and say which is cheaper and which faster.", rich_help_panel=_FLEET),
    ] = None,
    segment_seconds: Annotated[
        Optional[float],
        typer.Option("--segment-seconds", min=1, help="Segment length. Default: the duration over --workers, 10-600 s.", rich_help_panel=_FLEET),
    ] = None,
    uplink_mbps: Annotated[
        float, typer.Option("--uplink-mbps", min=0.001, help="The client's upload bandwidth, Mbit/s.", rich_help_panel=_FLEET),
    ] = 100.0,
    uploaded: Annotated[
        bool, typer.Option("--uploaded", help="The media is already at a URL (https:// or s3://): the segment path hashes and uploads nothing.", rich_help_panel=_FLEET),
    ] = False,
) -> None:
    """Estimate GPU seconds and dollars per endpoint for analysing VIDEOs (or --duration),
    next to the seed's naive plan, from the sampling plan and caption policy analyze uses.

    Exit codes: 0 estimated; 1 a video cannot be read; 2 usage or configuration error.
    """
    from ..config import load_settings
    from ..cost import MediaFacts, estimate, load_prices, load_profile, parse_duration
    from ..errors import ConfigError
    from ..media.probe import probe

    if output is not None and not profile_from:
        raise ConfigError("--output writes a profile: it goes with --profile-from")
    settings = load_settings(config, dict(
        detect=detect, transcribe=transcribe, caption=caption, summary=summary, speakers=speakers,
        detect_fps=detect_fps, yolo_batch=yolo_batch, audio_chunk_s=audio_chunk_s,
        caption_fps=caption_fps, caption_min_gap_s=caption_min_gap_s,
        caption_max_gap_s=caption_max_gap_s, caption_max_per_minute=caption_max_per_minute,
    ))
    price_table = load_prices(prices or settings.prices_file)
    time_profile = load_profile(profile or settings.profile_file)
    if profile_from:
        return write_profile_from(paths or [], price_table, time_profile, output)
    if not (settings.detect or settings.transcribe or settings.caption):
        raise ConfigError("--no-detect and --no-transcribe together leave nothing to estimate")
    if captions not in ("bounds", "exact"):
        raise ConfigError(f"option --captions: expected bounds or exact (got {captions!r})")
    if bool(paths) == (duration is not None):
        raise ConfigError("give VIDEO files or --duration, not both and not neither")
    if workers is None and (segment_seconds is not None or uploaded):
        raise ConfigError("--segment-seconds and --uploaded price the segment path: give --workers N")
    if duration is not None and captions == "exact":
        raise ConfigError("--captions exact decodes a VIDEO; with --duration only bounds are known")

    if duration is not None:
        try:
            videos = [MediaFacts.assumed(parse_duration(duration))]
        except ValueError as exc:
            raise ConfigError(f"option --duration: {exc}") from None
        infos = []
    else:
        infos = [probe(path) for path in paths]
        videos = [MediaFacts.of(info) for info in infos]
    exact = None
    if captions == "exact" and settings.caption:
        exact = [exact_caption_count(Path(info.path), info, settings) for info in infos]

    result = estimate(videos, settings, price_table, time_profile, exact)
    fleet = None
    if workers is not None:
        from ..cost import fleet_estimate

        fleet = fleet_estimate(videos, settings, price_table, time_profile, workers, segment_seconds,
                               uplink_mbps, uploaded)
    if as_json:
        if fleet is None:
            print(result.model_dump_json(indent=2))
        else:
            import json

            print(json.dumps({**result.model_dump(mode="json"), "fleet": fleet.model_dump(mode="json")}, indent=2))
    else:
        print_table(result)
        if fleet is not None:
            from .cost_fleet import print_fleet

            print_fleet(fleet, result.duration_s)


cost_estimate_command.__doc__ = inspect.cleandoc(cost_estimate_command.__doc__) + "\n\n" + JSON_HELP


def write_profile_from(paths: list[Path], prices, base, output: Path | None) -> None:
    """`--profile-from`: the reports' measured usage as a time profile."""
    from datetime import datetime, timezone

    from ..cost.measured import profile_from_reports, profile_yaml, read_reports
    from ..errors import ConfigError

    reports = read_reports(paths)
    made = profile_from_reports(reports, base, prices)
    header = [
        "Time profile measured from vidagent reports by `vidagent cost-estimate --profile-from`",
        f"on {datetime.now(timezone.utc):%Y-%m-%d}, from: {', '.join(name for name, _ in reports)}.",
        "Endpoints marked `provenance: published` kept the base profile's figures.",
        *made.notes,
    ]
    text = profile_yaml(made.profile, header)
    if output is None:
        print(text, end="")
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write the profile ({exc.strerror})") from None
    from rich.console import Console

    Console(stderr=True).print(f"Wrote {output}; use it with --profile {output}", markup=False, highlight=False)


def exact_caption_count(path: Path, media, settings) -> int:
    """Decode only the caption candidates (no detection frames, no audio) and replay the
    policy over their signatures."""
    from contextlib import closing

    from ..cost import count_captions
    from ..media.sampler import FrameSpec, extract

    spec = FrameSpec("caption", settings.caption_fps, settings.caption_size)
    with closing(extract(path, media, [spec], None, settings.jpeg_quality)) as frames:
        return count_captions(((frame.t, frame.signature) for frame in frames), settings)


# -- the table ----------------------------------------------------------------------------


def print_table(result) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # piped: Rich would assume 80 columns and squeeze the table
        console = Console(width=140)
    table = Table(title=_title(result), title_justify="left")
    for heading in ("endpoint", "pool", "seconds from", "jobs", "items", "GPU s", "cold starts", "$ flex",
                    "$ active", "naive jobs", "naive $ flex"):
        table.add_column(heading, justify="left" if heading in ("endpoint", "pool", "seconds from") else "right",
                         no_wrap=heading == "seconds from")
    for name, cost in result.configured.endpoints.items():
        naive = result.naive.endpoints[name]
        table.add_row(name, cost.pool, result.figures[name].short(), f"{cost.jobs:,}", f"{cost.items:,}",
                      f"{cost.gpu_s:,.1f}", str(cost.cold_starts), _usd(cost.usd_flex), _usd(cost.usd_active),
                      f"{naive.jobs:,}", _usd(naive.usd_flex))
    total, naive_total = result.configured.total, result.naive.total
    table.add_section()
    table.add_row("total", "", "", f"{total.jobs:,}", f"{total.items:,}", f"{total.gpu_s:,.1f}",
                  str(total.cold_starts), _usd(total.usd_flex), _usd(total.usd_active),
                  f"{naive_total.jobs:,}", _usd(naive_total.usd_flex), style="bold")
    console.print(table)

    share = f" ({result.saving_fraction:.0%})" if result.saving_fraction is not None else ""
    console.print(f"Saving against the naive plan: {_usd(result.saving_usd_flex)}{share} at flex prices.")
    if result.configured_usd_flex_per_hour is not None:
        console.print(f"Per hour of video: {_usd(result.configured_usd_flex_per_hour)} configured, "
                      f"{_usd(result.naive_usd_flex_per_hour)} naive.")
    for video in result.videos:
        if video.captions is not None:
            c = video.captions
            exact = f", exact {c.exact}" if c.exact is not None else ""
            console.print(f"Captions in {video.name}: {c.min}-{c.max}, typical {c.typical}{exact} "
                          f"(of {c.candidates} candidates).")
    if result.captions_mode != "off":
        console.print(f"With the fewest and the most captions: {_usd(result.configured_usd_flex_min)} "
                      f"to {_usd(result.configured_usd_flex_max)}.")
    for note in result.notes:
        console.print(f"- {note}", style="dim", markup=False, highlight=False)


def _title(result) -> str:
    if all(v.source == "assumed" for v in result.videos):
        return f"Estimated cost of {result.duration_s:,.1f} s of video"
    names = ", ".join(v.name for v in result.videos[:3]) + (" …" if len(result.videos) > 3 else "")
    return f"Estimated cost of {names} ({result.duration_s:,.1f} s of video)"


def _usd(value: float) -> str:
    return f"${value:,.4f}" if abs(value) < 1 else f"${value:,.2f}"
