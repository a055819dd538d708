"""A self-contained HTML page per report (and an index page per batch).

Everything the page needs is inside the file: CSS and JS inline, thumbnails as JPEG data
URLs, so it opens from an artifact store or an e-mail with no network. Its player links
the video (or a proxy beside the page) by a relative path: player.py. The report stores
no frames, so thumbnails are decoded again from the source video (PyAV) when it is at
hand; without it the page still renders, minus the pictures, and says so.
All text goes through Jinja2's autoescaping; data for the script goes through `tojson`.
"""

from __future__ import annotations

import base64
import bisect
import json
from pathlib import Path
from typing import Any

from .. import __version__
from ..timefmt import short_clock
from .events import span
from ..media.probe import MediaInfo
from .model import FrameDetections, Report
from ..files import atomic_write
from .player import PageMedia, page_media, proxy_advice
from .writers import caption_ends

THUMB_SIDE = 384  # long side of a thumbnail, px: sharp enough to read, small enough to embed
THUMB_QUALITY = 72
MAX_TRACK_THUMBS = 24  # the longest-seen tracks get a key frame each
COVERAGE_THUMBS = 12  # evenly spaced frames so a click anywhere has a picture near it
SEEK_AHEAD_S = 4.0  # decode forward rather than seek when the next frame is this close
CHART_W, CHART_H = 1000, 160
PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6",
           "#bfef45", "#469990", "#9a6324", "#800000", "#808000", "#000075", "#a9a9a9"]


def render_html(report: Report, folder: Path, video: Path | None = None, html_video: str | None = None) -> str:
    """The page for one report, to be written into `folder`; `video` overrides where the
    source file is looked for, `html_video` what the page plays (default: the report's
    own `html_video` setting, else source)."""
    source = find_video(report, video)
    media = played_media(report, source, video)
    streams = report.transcript.streams
    player = page_media(media, source, folder, html_mode(report, html_video), streams[0] if streams else None)
    wanted = key_times(report) if report.media.has_video else []
    frames, note = {}, None
    if not report.media.has_video:
        note = None  # an audio file: nothing to picture
    elif source is None:
        note = f"Source video not found ({report.media.path}): no player, no thumbnails. Use --video PATH."
        player.note = None  # said once, here
    elif wanted:
        try:
            frames = grab_frames(source, report, [t for t, _ in wanted])
        except Exception as exc:  # a damaged file costs the pictures, never the page
            note = f"Could not decode thumbnails from {source}: {exc}"
    return template("report.html.j2").render(**page_context(report, wanted, frames, note, player))


def played_media(report: Report, source: Path | None, video: Path | None) -> MediaInfo:
    """The facts of the file the page plays: the report's, or a --video file's own."""
    if video is None or source is None:
        return report.media
    from ..media.probe import probe

    try:
        return probe(source)
    except Exception:  # unreadable: the report's facts, and the browser will say the rest
        return report.media


def html_warning(report: Report, video: Path | None = None, html_video: str | None = None) -> str | None:
    """The one-line warning for a page that links a source browsers may not play."""
    source = find_video(report, video)
    if html_mode(report, html_video) != "source" or source is None:
        return None
    return proxy_advice(played_media(report, source, video))


def html_mode(report: Report, html_video: str | None) -> str:
    """What the page plays: as asked, else as when the report was made, else the source."""
    return html_video or report.settings.get("html_video") or "source"


def find_video(report: Report, video: Path | None) -> Path | None:
    candidates = [video] if video else [Path(report.media.path)]
    return next((p for p in candidates if p and p.is_file()), None)


def key_times(report: Report) -> list[tuple[float, str]]:
    """(time, why) of every thumbnail: captions, key frames of tracks, even coverage."""
    times = [(c.t, f"caption ({c.reason})") for c in report.captions]
    longest = sorted(report.tracks, key=lambda k: (-k.frames, k.id))[:MAX_TRACK_THUMBS]
    times += [(k.best_t, f"{k.label} #{k.id}") for k in sorted(longest, key=lambda k: k.id)]
    duration = report.media.duration_s
    if duration > 0:
        step = duration / COVERAGE_THUMBS
        times += [(round(step * (i + 0.5), 3), "frame") for i in range(COVERAGE_THUMBS)]
    merged: dict[float, str] = {}
    for t, why in times:  # one picture per moment, with every reason it was picked
        key = round(t, 3)
        merged[key] = f"{merged[key]}, {why}" if key in merged else why
    return sorted(merged.items())


def grab_frames(path: Path, report: Report, times: list[float]) -> dict[float, tuple[bytes, int, int]]:
    """JPEG, width, height of the first frame at or after each time (report clock)."""
    return grab_media_frames(path, report.media, times)


def grab_media_frames(path: Path, media: MediaInfo, times: list[float], side: int = THUMB_SIDE,
                      quality: int = THUMB_QUALITY) -> dict[float, tuple[bytes, int, int]]:
    """grab_frames for a video known by its MediaInfo; `side` is the long side in pixels."""
    from ..media.probe import open_container
    from ..media.jpeg import encode_jpeg

    offset, rotation = media.start_time_s, media.rotation
    wanted = sorted(set(round(t, 3) for t in times))
    half_frame = 0.5 / (media.fps or 30.0)
    found: dict[float, tuple[bytes, int, int]] = {}

    def encode(frame) -> tuple[bytes, int, int]:
        jpeg, planes = encode_jpeg(frame, side, rotation, quality)
        height, width = planes[0].shape
        return jpeg, width, height

    with open_container(path) as container:
        stream = container.streams.video[0]
        i, last = 0, None
        while i < len(wanted):
            container.seek(int((wanted[i] + offset) / stream.time_base), stream=stream, backward=True)
            ended = True
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                last = frame
                at = float(frame.pts * stream.time_base) - offset
                if at < wanted[i] - half_frame:
                    continue
                picture = encode(frame)
                while i < len(wanted) and at >= wanted[i] - half_frame:
                    found[wanted[i]] = picture
                    i += 1
                # Seek only right after serving a time, so a seek that lands on a keyframe
                # far before its target decodes forward instead of seeking there again.
                if i >= len(wanted) or wanted[i] - at > SEEK_AHEAD_S:
                    ended = False
                    break
            if ended:  # times past the last frame (duration rounding) get the last frame
                if last is not None:
                    picture = encode(last)
                    found.update({t: picture for t in wanted[i:]})
                break
    return found


def page_context(report: Report, wanted: list[tuple[float, str]], frames: dict, note: str | None,
                 player: PageMedia) -> dict[str, Any]:
    labels = sorted({k.label for k in report.tracks} | {o.label for d in report.detections for o in d.objects})
    colors = {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(labels)}
    thumbs = [_thumb(report, t, why, frames[t], colors) for t, why in wanted if t in frames]
    usd = [u.usd for u in report.usage.values() if u.usd is not None]
    return {
        "r": report,
        "m": report.media,
        "version": __version__,
        "clock": short_clock,
        "span": span,
        "colors": colors,
        "thumbs": thumbs,
        "thumb_note": note,
        "cost": round(sum(usd), 4) if usd else None,
        "settings": {k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in report.settings.items()},
        "chart": objects_chart(report.detections, report.media.duration_s, colors),
        "player": player,
        "caption_ends": caption_ends(report.captions, report.media.duration_s),
        "data": {**_script_data(report, thumbs, colors), "player": player.as_data()},
        "speaker_colors": speaker_colors(report),
    }


SPEAKER_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


def speaker_colors(report: Report) -> dict[str, str]:
    """Speaker id -> colour; the page's CSS classes spk-<id> and its speaker lanes use them."""
    return {sp.id: SPEAKER_PALETTE[i % len(SPEAKER_PALETTE)] for i, sp in enumerate(report.speakers)}


def speaker_lanes(report: Report) -> list[dict]:
    """One timeline lane per speaker: their turns (overlapping turns show in both lanes)."""
    colors = speaker_colors(report)
    return [{"name": f"{sp.name} ({sp.speech_s:.0f}s)", "color": colors[sp.id], "items": [
        {"start": t.start, "end": t.end, "text": f"{sp.name} {span(t.start, t.end)}"}
        for t in report.speaker_turns if t.speaker == sp.id]} for sp in report.speakers]


def _thumb(report: Report, t: float, why: str, frame: tuple[bytes, int, int], colors: dict) -> dict:
    jpeg, width, height = frame
    highlight = {k.id: k for k in report.tracks if abs(k.best_t - t) < 1e-3}
    boxes = [
        {"box": o.box, "label": f"{o.label} {o.confidence:.2f}", "color": colors.get(o.label, "#fff"),
         "key": any(k.label == o.label and k.best_box == [round(v, 1) for v in o.box] for k in highlight.values())}
        for o in _objects_near(report.detections, t, report)
    ]
    return {
        "t": t, "why": why, "src": "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii"),
        "w": width, "h": height, "boxes": boxes,
    }


def _objects_near(detections: list[FrameDetections], t: float, report: Report) -> list:
    """Boxes of the detection frame at `t`, if one was sampled within half a sampling step."""
    if not detections:
        return []
    times = [d.t for d in detections]
    i = bisect.bisect_left(times, t)
    nearest = min((j for j in (i - 1, i) if 0 <= j < len(times)), key=lambda j: abs(times[j] - t))
    fps = float(report.settings.get("detect_fps") or 10.0)
    return detections[nearest].objects if abs(times[nearest] - t) <= 0.5 / fps + 1e-3 else []


def objects_chart(detections: list[FrameDetections], duration: float, colors: dict) -> dict:
    """Boxes per class per detection frame as SVG polyline points (the chart has no JS)."""
    per_label: dict[str, list[tuple[float, int]]] = {label: [] for label in colors}
    for frame in detections:
        seen: dict[str, int] = {}
        for o in frame.objects:
            seen[o.label] = seen.get(o.label, 0) + 1
        for label in per_label:
            per_label[label].append((frame.t, seen.get(label, 0)))
    peak = max((n for points in per_label.values() for _, n in points), default=0)
    scale_x = CHART_W / duration if duration > 0 else 0.0
    series = [
        {"label": label, "color": colors[label], "peak": max((n for _, n in points), default=0),
         "points": " ".join(f"{t * scale_x:.1f},{CHART_H - n / peak * (CHART_H - 10):.1f}" for t, n in points)}
        for label, points in per_label.items() if peak
    ]
    ticks = [{"x": round(i * CHART_W / 5, 1), "label": short_clock(duration * i / 5)} for i in range(6)]
    return {"w": CHART_W, "h": CHART_H, "peak": peak, "series": series, "ticks": ticks}


def _script_data(report: Report, thumbs: list[dict], colors: dict) -> dict:
    """What the page script needs: the timeline's lanes, thumbnail times, captions, speech."""
    return {
        "duration": report.media.duration_s,
        "lanes": timeline_lanes(report, colors),
        "thumbs": [t["t"] for t in thumbs],
        "captions": [{"t": c.t, "text": c.text} for c in report.captions],
        "segments": [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in report.transcript.segments],
    }


def timeline_lanes(report: Report, colors: dict) -> list[dict]:
    """The timeline's lanes, top to bottom: {name, color, items: [{start, end, text}]};
    an item may carry its own `color`. The script draws whatever lanes it is given, so a
    new lane is one more entry here."""
    lanes = [
        {"name": "speech", "color": "#555", "items": [
            {"start": s.start, "end": s.end, "text": s.text.strip()} for s in report.transcript.segments]},
        *speaker_lanes(report),
        {"name": "captions", "color": "#0a7", "items": [
            {"start": c.t, "end": c.t, "text": f"[{c.reason}] {c.text}"} for c in report.captions]},
        {"name": "scene changes", "color": "#c60", "items": [
            {"start": c.t, "end": c.t, "text": c.text} for c in report.captions if c.reason == "scene"]},
    ]
    for label, color in colors.items():
        tracks = [k for k in report.tracks if k.label == label]
        lanes.append({"name": f"{label} ({len(tracks)})", "color": color, "items": [
            {"start": k.first_seen, "end": k.last_seen, "text": f"{label} #{k.id} {span(k.first_seen, k.last_seen)}"}
            for k in tracks]})
    return lanes


def write_index_html(rows: list[dict[str, Any]], out: Path) -> Path:
    """index.html beside index.json: one line per input, linking its report.html."""
    entries = [{**row, "link": _report_link(row.get("folder"), out)} for row in rows]
    html = template("index.html.j2").render(rows=entries, clock=short_clock, version=__version__)
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write(out / "index.html", html)


def _report_link(folder: str | None, out: Path) -> str | None:
    """report.html of a video, else its report.json; relative, so the folder can move."""
    if not folder:
        return None
    for name in ("report.html", "report.json"):
        target = Path(folder) / name
        if target.exists():
            try:
                return target.resolve().relative_to(out.resolve()).as_posix()
            except ValueError:
                return target.resolve().as_uri()
    return None


def template(name: str):
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("vidagent.report", "templates"),
        autoescape=select_autoescape(["html", "j2"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template(name)
