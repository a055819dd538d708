"""Writes the clip test_input.json names: 4 s of moving picture at 29.97 fps with a keyframe
each second and a tone, made with PyAV alone (the image has no ffmpeg program), so the
image's own test (RunPod's test_input.json mode) needs no network.

    python make_test_clip.py test_clip.mp4
"""

import sys
from fractions import Fraction

import av
import numpy as np

RATE = Fraction(30000, 1001)
SECONDS = 4


def main(path: str) -> None:
    with av.open(path, "w") as out:
        video = out.add_stream("mpeg4", rate=RATE)
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        video.codec_context.gop_size = 30
        audio = out.add_stream("aac", rate=16000)
        frames = int(SECONDS * RATE)
        for i in range(frames):
            picture = np.zeros((240, 320, 3), np.uint8)
            picture[:, (i * 4) % 320:(i * 4) % 320 + 40] = 255  # a bar that moves: scenes differ
            for packet in video.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")):
                out.mux(packet)
        t = np.arange(16000 * SECONDS) / 16000
        tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for start in range(0, len(tone), 1024):
            chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="fltp", layout="mono")
            chunk.sample_rate = 16000
            for packet in audio.encode(chunk):
                out.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)


if __name__ == "__main__":
    main(sys.argv[1])
