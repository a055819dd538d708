"""Probe a media file: what it holds, before anything is decoded in bulk."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from ..errors import MediaError


class AudioStreamInfo(BaseModel):
    index: int
    codec: str | None = None
    channels: int | None = None
    sample_rate: int | None = None
    language: str | None = None
    title: str | None = None
    default: bool = False


class MediaInfo(BaseModel):
    """Facts about one input. Times are float seconds; sizes are as displayed (rotation applied).

    Time zero is the first video frame, or for an audio-only file the start of its audio."""

    path: str
    file_name: str
    size_bytes: int
    container: str | None = None
    duration_s: float = Field(description="From time zero to the end of the file.")
    start_time_s: float = Field(0.0, description="Time zero in the file's own clock (pts of the first video frame).")
    has_video: bool = True
    width: int | None = Field(None, description="Display width, after rotation (None: no video).")
    height: int | None = Field(None, description="Display height, after rotation (None: no video).")
    coded_width: int | None = None
    coded_height: int | None = None
    rotation: int = Field(0, description="Degrees counter-clockwise applied to show the frame upright.")
    fps: float | None = Field(None, description="Average frame rate.")
    frame_count: int | None = None
    video_codec: str | None = None
    has_audio: bool
    audio_streams: list[AudioStreamInfo] = Field(default_factory=list)


def open_container(path):
    """Open with PyAV, mapping its errors to one-line MediaErrors that name the file.
    `path`: a Path, or a MediaURL (segments/source.py), read over HTTP in ranges."""
    import av

    url = getattr(path, "url", None)
    if url is not None:
        return _open_url(av, url, path)
    if not path.exists():
        raise MediaError(f"{path}: no such file")
    if path.is_dir():
        raise MediaError(f"{path}: is a folder, not a video file")
    if path.stat().st_size == 0:
        raise MediaError(f"{path}: file is empty (0 bytes)")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"{path}: not a readable media file ({reason})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MediaError(f"{path}: cannot open ({exc})") from None


def _open_url(av, url: str, shown):
    """Through RangeReader (media/remote.py): bounded ranged reads, counted; `container.file.bytes_read`."""
    from .remote import RangeReader

    reader = RangeReader(url, str(shown))
    try:
        return av.open(reader, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        reader.close()
        reason = exc.strerror or type(exc).__name__
        raise MediaError(f"{shown}: not a readable media file ({reason})") from None


def probe(path) -> MediaInfo:
    """`path`: a file, or a MediaURL (only the container's header, index and first frame are read)."""
    path = path if getattr(path, "url", None) is not None else Path(path)
    with open_container(path) as container:
        return describe(container, path)


def describe(container, path) -> MediaInfo:
    """The facts of an open container (decodes its first video frame, for time zero)."""
    audio = [
        AudioStreamInfo(
            index=stream.index,
            codec=stream.codec_context.name,
            channels=stream.codec_context.channels,
            sample_rate=stream.codec_context.sample_rate,
            language=_tag(stream.metadata.get("language")),
            title=_tag(stream.metadata.get("title")),
            default=bool(stream.disposition & 1),  # AV_DISPOSITION_DEFAULT
        )
        for stream in container.streams.audio
    ]
    facts = dict(path=str(path), file_name=path.name, size_bytes=_size(path, container),
                 container=container.format.name, has_audio=bool(audio), audio_streams=audio)
    if not container.streams.video:
        if not audio:
            raise MediaError(f"{path}: no video or audio stream to analyse")
        return _audio_only(container, path, facts)
    video = container.streams.video[0]
    first_pts, rotation = _first_frame(container, video, path)
    rotation = _normalise_rotation(rotation)
    start = float(first_pts * video.time_base) if first_pts is not None else 0.0
    width, height = video.codec_context.width, video.codec_context.height
    display_w, display_h = (height, width) if rotation in (90, 270) else (width, height)
    return MediaInfo(
        **facts,
        duration_s=round(max(0.0, _end_time(container, video) - start), 6),
        start_time_s=start,
        width=display_w,
        height=display_h,
        coded_width=width,
        coded_height=height,
        rotation=rotation,
        fps=float(video.average_rate) if video.average_rate else None,
        frame_count=video.frames or None,
        video_codec=video.codec_context.name,
    )


def _audio_only(container, path: Path, facts: dict) -> MediaInfo:
    """An audio file (m4a, mp3, wav, flac, ogg/opus): time zero is where its audio starts."""
    stream = container.streams.audio[0]
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration is not None:
        end = start + float(stream.duration * stream.time_base)
    elif container.duration is not None:
        end = (container.duration + (container.start_time or 0)) / 1_000_000
    else:
        end = start
    return MediaInfo(**facts, has_video=False, duration_s=round(max(0.0, end - start), 6), start_time_s=start)


def _first_frame(container, video, path: Path) -> tuple[int | None, int]:
    import av

    try:
        for frame in container.decode(video):
            return frame.pts, int(frame.rotation or 0)
    except av.error.FFmpegError as exc:
        raise MediaError(f"{path}: video cannot be decoded ({exc.strerror})") from None
    raise MediaError(f"{path}: video stream has no decodable frames (file truncated?)")


def _end_time(container, video) -> float:
    if video.duration is not None and video.start_time is not None:
        return float((video.start_time + video.duration) * video.time_base)
    if container.duration is not None:
        return (container.duration + (container.start_time or 0)) / 1_000_000
    return 0.0


def _size(path, container) -> int:
    if getattr(path, "url", None) is None:
        return path.stat().st_size
    try:
        return max(0, int(container.size))
    except (AttributeError, TypeError, ValueError):
        return 0


def _normalise_rotation(degrees: int) -> int:
    return int(round(degrees / 90.0)) * 90 % 360


def _tag(value: str | None) -> str | None:
    return None if value in (None, "", "und") else value
