"""What the client learns about a URL before any segment runs: the container's facts and
where its keyframes are, without decoding more than the first frame.

MP4/MOV (and most containers FFmpeg indexes at open) list every sample with its flags in
the index (`stream.index_entries`), which comes from the moov atom: reading it costs the
header and the index only. A container without such an index (an MKV without cues, MPEG-TS)
is asked once per wanted cut instead: a backward seek to the cut and one packet read say
which keyframe starts there. `bytes_read` counts what the probe fetched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

from ..media.probe import MediaInfo, describe, open_container


@dataclass(frozen=True)
class Survey:
    media: MediaInfo
    time_base: Fraction | None  # of the video stream (None: audio only)
    origin_pts: int  # pts of the first video frame: time zero
    keyframes: tuple[int, ...]  # keyframe pts (the index's times), sorted, in the stream's time_base
    indexed: bool  # keyframes came from the container's index (else: from seeks)
    bytes_read: int
    requests: int
    seconds: float
    version: str | None = None  # the server's ETag or Last-Modified: a changed file is another file


def survey(source, cuts_for: Callable[[float], list[float]] = lambda duration: []) -> Survey:
    """`source`: a MediaURL or a Path. `cuts_for(duration)`: where cuts are wanted (seconds
    from time zero), asked of containers without an index."""
    started = time.perf_counter()
    with open_container(source) as container:
        media = describe(container, source)
        if not container.streams.video:
            keyframes, indexed, tb, origin = (), True, None, 0
        else:
            video = container.streams.video[0]
            tb = video.time_base
            origin = round(media.start_time_s / tb)
            keyframes = tuple(sorted({e.timestamp for e in video.index_entries
                                      if e.is_keyframe and not e.is_discard}))
            indexed = len(keyframes) > 0
            if not indexed:
                keyframes = _seek_for_keyframes(container, video, origin, cuts_for(media.duration_s))
            keyframes = _as_pts(keyframes, origin)
        reader = getattr(container.file, "file", None) if container.file is not None else None
        remote = hasattr(reader, "bytes_read")
        read, requests = (reader.bytes_read, reader.requests) if remote else (0, 0)
        version = reader.version if remote else None
    return Survey(media, tb, origin, keyframes, indexed, read, requests, time.perf_counter() - started, version)


def _as_pts(keyframes: tuple[int, ...], origin: int) -> tuple[int, ...]:
    """An MP4 index holds decode times: with B-frames each keyframe shows a constant delay
    later (the first keyframe shows at time zero). Shifted by that delay they are display
    times; a keyframe whose shifted time is off only makes its worker start one GOP early."""
    if not keyframes or keyframes[0] >= origin:
        return keyframes
    delay = origin - keyframes[0]
    return tuple(k + delay for k in keyframes)


def _seek_for_keyframes(container, video, origin: int, cuts_s: list[float]) -> tuple[int, ...]:
    import av

    found = {origin}
    for cut in cuts_s:
        try:
            container.seek(origin + int(cut / video.time_base), stream=video, backward=True)
            for packet in container.demux(video):
                if packet.pts is not None and packet.is_keyframe:
                    found.add(packet.pts)
                    break
        except av.error.FFmpegError:
            continue  # no cut here: the segments around it merge
    return tuple(sorted(found))
