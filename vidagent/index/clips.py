"""Cut moments out of their source videos as files (`vidagent search --clips DIR`).

A stream copy (no re-encoding: fast, lossless) can only start on a keyframe. When one
lies at most COPY_EARLY_S before the clip's start, the clip is copied from there and
starts that much early; otherwise it is re-encoded (H.264/AAC) to start on time. Every
clip says which it got and why. Times are the report's clock; ffmpeg is given absolute
timestamps (`-seek_timestamp`), so a file whose first frame is not at 0 cuts right too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, MediaError, VidagentError
from ..media.probe import MediaInfo
from ..timefmt import short_clock
from . import Hit
from .frames import source_of

PAD_S = 1.0  # context before and after the moment
MIN_CLIP_S = 3.0  # an instant (a caption) still gets a clip one can watch
COPY_EARLY_S = 1.0
_COPY_CONTAINERS = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".ts", ".mts", ".m2ts"}


@dataclass
class Clip:
    hit: Hit
    path: Path | None
    start: float
    end: float
    method: str  # copy, re-encode or skipped
    note: str


def clip_span(hit: Hit) -> tuple[float, float]:
    duration = hit.video.duration
    start = max(0.0, hit.moment.start - PAD_S)
    end = max(hit.moment.end + PAD_S, start + MIN_CLIP_S)
    return start, min(end, duration) if duration > start else end


def keyframe_before(source: Path, media: MediaInfo, t: float) -> float | None:
    """The last keyframe at or before `t` (report clock), found by demuxing, not decoding."""
    from ..media.probe import open_container

    with open_container(source) as container:
        stream = container.streams.video[0]
        base = float(stream.time_base)
        container.seek(int((t + media.start_time_s) / base), stream=stream, backward=True, any_frame=False)
        found = None
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            at = packet.pts * base - media.start_time_s
            if at > t + 1e-6:
                break
            if packet.is_keyframe:
                found = at
        return found


def cut(hit: Hit, folder: Path, number: int) -> Clip:
    start, end = clip_span(hit)
    source = source_of(hit.video)
    if source is None:
        return Clip(hit, None, start, end, "skipped", f"source video not found at {hit.video.media_path}")
    media = MediaInfo.model_validate(hit.video.media)
    stem = re.sub(r"[^\w.-]+", "_", Path(hit.video.name).stem)
    name = f"{number:02d}-{stem}-{int(start) // 60:02d}m{int(start) % 60:02d}s"
    keyframe = keyframe_before(source, media, start)
    copyable = source.suffix.lower() in _COPY_CONTAINERS
    if copyable and keyframe is not None and start - keyframe <= COPY_EARLY_S:
        out = folder / f"{name}{source.suffix.lower()}"
        early = start - keyframe
        codec = ["-c", "copy", "-avoid_negative_ts", "make_zero"]
        # Just past the keyframe, so that seeking cannot land on the one before it.
        _ffmpeg(source, media, keyframe + 0.001, end - keyframe, codec, out)
        note = "stream copy" + (f", starts {early:.1f} s early at a keyframe" if early >= 0.05 else "")
        return Clip(hit, out, keyframe, end, "copy", note)
    out = folder / f"{name}.mp4"
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
             "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart"]
    _ffmpeg(source, media, start, end - start, codec, out)
    if not copyable:
        why = f"{source.suffix or 'this'} files are not stream-copied"
    elif keyframe is None:
        why = f"no keyframe before {short_clock(start)}"
    else:
        why = f"the keyframe before {short_clock(start)} is {start - keyframe:.1f} s early"
    return Clip(hit, out, start, end, "re-encode", f"re-encoded: {why}")


def cut_clips(hits: list[Hit], folder: Path) -> list[Clip]:
    if shutil.which("ffmpeg") is None:
        raise ConfigError("--clips needs ffmpeg on PATH (apt-get install ffmpeg)")
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for number, hit in enumerate(hits, start=1):
        try:
            clips.append(cut(hit, folder, number))
        except VidagentError as exc:  # a damaged source costs its clip, not the others
            start, end = clip_span(hit)
            clips.append(Clip(hit, None, start, end, "skipped", str(exc)))
    return clips


def _ffmpeg(source: Path, media: MediaInfo, start: float, length: float, codec: list[str], out: Path) -> None:
    command = ["ffmpeg", "-v", "error", "-y", "-seek_timestamp", "1", "-ss", f"{start + media.start_time_s:.3f}",
               "-i", str(source), "-t", f"{length:.3f}", "-map", "0:v:0", "-map", "0:a:0?", *codec, str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        out.unlink(missing_ok=True)
        last = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise MediaError(f"{source}: ffmpeg could not cut {short_clock(start)}: {last}")
