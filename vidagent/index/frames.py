"""Pictures of moments, decoded from the source videos (thumbnails for search, evidence
for ask). The index stores no frames: a video that moved or is gone costs its pictures,
never the result, and says so in a note."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..media.probe import MediaInfo
from . import Video


@dataclass
class Pictures:
    jpegs: dict[tuple[int, float], tuple[bytes, int, int]] = field(default_factory=dict)  # (video id, t)
    notes: list[str] = field(default_factory=list)

    def get(self, video: Video, t: float) -> tuple[bytes, int, int] | None:
        return self.jpegs.get((video.id, round(t, 3)))


def source_of(video: Video) -> Path | None:
    path = Path(video.media_path)
    return path if path.is_file() else None


def moment_pictures(wanted: list[tuple[Video, float]], side: int = 384) -> Pictures:
    """JPEG, width and height of the frame at each (video, time)."""
    from ..report.html import grab_media_frames

    pictures = Pictures()
    by_video: dict[int, tuple[Video, list[float]]] = {}
    for video, t in wanted:
        by_video.setdefault(video.id, (video, []))[1].append(round(t, 3))
    for video, times in by_video.values():
        source = source_of(video)
        if source is None:
            pictures.notes.append(f"{video.name}: source video not found at {video.media_path}; no pictures from it")
            continue
        try:
            found = grab_media_frames(source, MediaInfo.model_validate(video.media), times, side=side)
        except Exception as exc:  # a damaged file (PyAV's own errors too) costs the pictures only
            pictures.notes.append(f"{video.name}: cannot decode pictures from {source} ({exc})")
            continue
        pictures.jpegs.update({(video.id, t): frame for t, frame in found.items()})
    return pictures
