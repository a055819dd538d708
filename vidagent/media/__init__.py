"""Media: probing inputs and extracting frames and audio in one decode pass.

FFmpeg's libraries run in-process through PyAV (see docs/decisions.md): one demux of the
container feeds both the video decoder and the audio decoder, and every frame keeps its
true presentation timestamp.
"""

from .probe import AudioStreamInfo, MediaInfo, probe
from .sampler import AudioChunk, SampledFrame, extract

__all__ = ["AudioChunk", "AudioStreamInfo", "MediaInfo", "SampledFrame", "extract", "probe"]
