"""A small copy of a video (or audio file) that every browser plays, for the HTML report.

Encoded with PyAV's own FFmpeg (no ffmpeg binary needed): H.264/AAC in MP4 where the build
has libx264 (every browser, Safari included), else VP9/Opus in WebM. The copy starts at
the report's time zero (the first video frame), so a time in the report is the proxy's
`currentTime` as it is; it is upright (rotation applied) and at most PROXY_HEIGHT tall.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

from ..errors import MediaError
from .probe import MediaInfo, open_container

PROXY_HEIGHT = 360  # px: enough to see what happens, small enough to sit beside a report
KEYFRAME_S = 2.0  # a keyframe this often: a click on the timeline seeks in a blink
AUDIO_RATES = (48000, 44100)
# (container, extension, video encoder, audio encoder), the most widely playable first
FORMATS = [("mp4", ".mp4", "libx264", "aac"), ("webm", ".webm", "libvpx-vp9", "libopus")]
AUDIO_ONLY_FORMATS = [("ipod", ".m4a", None, "aac"), ("webm", ".webm", None, "libopus")]
MS = Fraction(1, 1000)
PROXY_EXTENSIONS = sorted({fmt[1] for fmt in FORMATS + AUDIO_ONLY_FORMATS})


def proxy_format(has_video: bool) -> tuple[str, str, str | None, str]:
    """The first format whose encoders this PyAV build has."""
    import av

    for fmt in FORMATS if has_video else AUDIO_ONLY_FORMATS:
        try:
            for name in fmt[2:]:
                if name:
                    av.codec.Codec(name, "w")
        except Exception:  # av.codec.codec.UnknownCodecError: not in this build
            continue
        return fmt
    raise MediaError("this PyAV build has neither libx264+aac nor libvpx-vp9+libopus: cannot write a proxy")


def proxy_path(folder: Path, has_video: bool) -> Path:
    return folder / ("media.proxy" + proxy_format(has_video)[1])


def write_proxy(source: Path, media: MediaInfo, out: Path, audio_index: int | None = None) -> Path:
    """Encode `source` to `out` (written beside it, then renamed into place); returns `out`.
    `audio_index` is the container's stream index of the audio to keep (default: the
    default audio stream)."""
    container_fmt, _, video_codec, audio_codec = proxy_format(media.has_video)
    partial = out.with_name(f".{out.name}.partial")
    try:
        with open_container(source) as src:
            _encode(src, media, partial, container_fmt, video_codec, audio_codec, audio_index)
        os.replace(partial, out)
    except MediaError:
        raise
    except Exception as exc:  # PyAV's errors: a damaged file costs the proxy, named in one line
        raise MediaError(f"{source}: cannot write a browser proxy ({exc})") from None
    finally:
        partial.unlink(missing_ok=True)
    return out


def _encode(src, media: MediaInfo, out: Path, container_fmt: str, video_codec: str | None,
            audio_codec: str, audio_index: int | None) -> None:
    import av

    offset = media.start_time_s
    video_in = src.streams.video[0] if media.has_video and src.streams.video else None
    if video_in is not None:
        video_in.thread_type = "AUTO"  # frame threads: the decoder keeps up with the encoder
    audio_in = _audio_stream(src, audio_index)
    options = {"movflags": "+faststart"} if container_fmt in ("mp4", "ipod") else {}
    with av.open(str(out), "w", format=container_fmt, options=options) as dst:
        streams, encoders = [], {}
        if video_in is not None and video_codec:
            encoders[video_in.index] = _video_encoder(dst, video_in, media, video_codec)
            streams.append(video_in)
        if audio_in is not None:
            encoders[audio_in.index] = _audio_encoder(dst, audio_in, audio_codec)
            streams.append(audio_in)
        if not streams:
            raise MediaError(f"{media.path}: nothing to put in a proxy")
        for packet in src.demux(streams):
            encode = encoders[packet.stream.index]
            for frame in packet.decode():
                if frame.pts is None or frame.time - offset < -1e-6:
                    continue  # before time zero (audio that starts early is trimmed, as in the report)
                encode(frame, frame.time - offset)
        for encode in encoders.values():
            encode(None, None)


def _audio_stream(src, audio_index: int | None):
    audio = list(src.streams.audio)
    chosen = [s for s in audio if s.index == audio_index] or [s for s in audio if s.disposition & 1] or audio
    return chosen[0] if chosen else None


def _video_encoder(dst, stream, media: MediaInfo, codec: str):
    import av
    import numpy as np

    rotation = media.rotation
    coded_w, coded_h = stream.codec_context.width, stream.codec_context.height
    if rotation in (90, 270):
        coded_w, coded_h = coded_h, coded_w  # the size shown upright
    scale = min(1.0, PROXY_HEIGHT / coded_h)
    width, height = (max(2, round(coded_w * scale / 2) * 2), max(2, round(coded_h * scale / 2) * 2))
    fps = media.fps or 30.0
    out = dst.add_stream(codec, rate=Fraction(round(fps * 1000), 1000))
    out.width, out.height, out.pix_fmt = width, height, "yuv420p"
    out.time_base = MS
    out.codec_context.time_base = MS
    out.codec_context.gop_size = max(1, round(KEYFRAME_S * fps))
    out.codec_context.thread_type = "FRAME"  # PyAV's default, SLICE, makes x264 use sliced threads: slower
    if codec == "libx264":
        out.codec_context.options = {"preset": "veryfast", "crf": "28"}
    else:
        out.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "crf": "36", "b": "0"}
    last_pts = -1
    in_w, in_h = (height, width) if rotation in (90, 270) else (width, height)
    scaler = av.video.reformatter.VideoReformatter()  # one swscale context for the whole file

    def encode(frame, t):
        nonlocal last_pts
        if frame is None:
            packets = out.encode(None)
        else:
            small = scaler.reformat(frame, width=in_w, height=in_h, format="yuv420p")
            if rotation:
                rgb = np.rot90(small.to_ndarray(format="rgb24"), rotation // 90)
                small = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24").reformat(format="yuv420p")
            pts = max(round(t * 1000), last_pts + 1)  # strictly increasing, as muxers demand
            last_pts = pts
            small.pts, small.time_base = pts, MS
            packets = out.encode(small)
        dst.mux(packets)

    return encode


def _audio_encoder(dst, stream, codec: str):
    import av

    rate = stream.codec_context.sample_rate
    rate = rate if rate in AUDIO_RATES or codec != "aac" else AUDIO_RATES[0]
    if codec == "libopus":
        rate = 48000
    layout = "mono" if (stream.codec_context.channels or 2) == 1 else "stereo"
    out = dst.add_stream(codec, rate=rate, layout=layout)
    out.codec_context.bit_rate = 64000 if layout == "mono" else 96000
    resampler = av.AudioResampler(format=out.codec_context.format.name, layout=layout, rate=rate,
                                  frame_size=out.codec_context.frame_size or None)
    written = None  # samples so far: audio pts follow the first frame's time, then count on

    def encode(frame, t):
        nonlocal written
        if frame is None:
            written = written or 0
            frames = resampler.resample(None)
        else:
            if written is None:
                written = round(t * rate)
            frame.pts = None  # the resampler counts samples from our first pts instead
            frames = resampler.resample(frame)
        for chunk in frames:
            chunk.pts, chunk.time_base = written, Fraction(1, rate)
            written += chunk.samples
            dst.mux(out.encode(chunk))
        if frame is None:
            dst.mux(out.encode(None))

    return encode
