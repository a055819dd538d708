"""A RunPod worker whose cost per item is fixed and known, for scripts/bench_pipeline.py.

It answers the yolo or whisper contract (BENCH_KIND, or by what the job holds when it is
unset) with empty results after sleeping BENCH_SECONDS_PER_ITEM per image, or per second
of audio: a stand-in GPU whose speed is exactly known, so the pipeline's overhead can be
measured against the ideal bound, and a test can know what a run bills.
"""

import asyncio
import base64
import io
import os
import wave

import runpod
import simplejpeg

KIND = os.environ.get("BENCH_KIND")
PER_ITEM = float(os.environ["BENCH_SECONDS_PER_ITEM"])


def _jpeg_size(image: str) -> tuple[int, int]:
    # The header sits in the first bytes: decoding all of them would add CPU that is
    # not part of the fixed cost this worker stands for.
    for prefix in (image[:4096], image):
        try:
            height, width, _, _ = simplejpeg.decode_jpeg_header(base64.b64decode(prefix))
            return width, height
        except ValueError:
            continue
    raise ValueError("not a JPEG")


def _yolo(job_input: dict) -> tuple[float, dict]:
    results = []
    for image in job_input["images"]:
        width, height = _jpeg_size(image)
        results.append({"width": width, "height": height, "detections": []})
    output = {"model": "fixed", "device": "bench", "results": results, "timings": {}}
    return PER_ITEM * len(results), output


def _whisper(job_input: dict) -> tuple[float, dict]:
    with wave.open(io.BytesIO(base64.b64decode(job_input["audio_base64"]))) as wav:
        seconds = wav.getnframes() / wav.getframerate()
    output = {"segments": [], "detected_language": "en", "language_probability": 1.0, "transcription": ""}
    return PER_ITEM * seconds, output


_gpu = asyncio.Lock()  # one job computes at a time, as on one GPU


async def handler(job):
    kind = KIND or ("yolo" if "images" in job["input"] else "whisper")
    busy_s, output = (_yolo if kind == "yolo" else _whisper)(job["input"])
    async with _gpu:
        await asyncio.sleep(busy_s)
    return output


# Up to 16 jobs held at once, like our real endpoint shims: while one computes the next
# ones wait, so the SDK's 1 s pause between takes never idles the "GPU".
runpod.serverless.start({"handler": handler, "concurrency_modifier": lambda current: 16})
