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


class MediaInfo(BaseModel):
    """Facts about one input. Times are float seconds; sizes are as displayed (rotation applied)."""

    path: str
    file_name: str
    size_bytes: int
    container: str | None = None
    duration_s: float = Field(description="From the first video frame to the end of the file.")
    start_time_s: float = Field(0.0, description="pts of the first video frame in the file's clock.")
    width: int = Field(description="Display width, after rotation.")
    height: int = Field(description="Display height, after rotation.")
    coded_width: int
    coded_height: int
    rotation: int = Field(0, description="Degrees counter-clockwise applied to show the frame upright.")
    fps: float | None = Field(None, description="Average frame rate.")
    frame_count: int | None = None
    video_codec: str | None = None
    has_audio: bool
    audio_streams: list[AudioStreamInfo] = Field(default_factory=list)


def open_container(path: Path):
    """Open with PyAV, mapping its errors to one-line MediaErrors that name the file."""
    import av

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


def probe(path: Path | str) -> MediaInfo:
    path = Path(path)
    container = open_container(path)
    with container:
        if not container.streams.video:
            raise MediaError(f"{path}: no video stream (audio-only files are not supported yet)")
        video = container.streams.video[0]
        first_pts, rotation = _first_frame(container, video, path)
        rotation = _normalise_rotation(rotation)
        start = float(first_pts * video.time_base) if first_pts is not None else 0.0
        width, height = video.codec_context.width, video.codec_context.height
        display_w, display_h = (height, width) if rotation in (90, 270) else (width, height)

        audio = [
            AudioStreamInfo(
                index=stream.index,
                codec=stream.codec_context.name,
                channels=stream.codec_context.channels,
                sample_rate=stream.codec_context.sample_rate,
                language=_tag(stream.metadata.get("language")),
                title=_tag(stream.metadata.get("title")),
            )
            for stream in container.streams.audio
        ]
        return MediaInfo(
            path=str(path),
            file_name=path.name,
            size_bytes=path.stat().st_size,
            container=container.format.name,
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
            has_audio=bool(audio),
            audio_streams=audio,
        )


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


def _normalise_rotation(degrees: int) -> int:
    return int(round(degrees / 90.0)) * 90 % 360


def _tag(value: str | None) -> str | None:
    return None if value in (None, "", "und") else value
