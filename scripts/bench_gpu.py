#!/usr/bin/env python3
"""Worker seconds per item for the three workers on one GPU, through their own handle().

    python scripts/bench_gpu.py --out configs/profile-h200.yaml     # on a CUDA GPU, <= 8 min
    python scripts/bench_gpu.py --smoke --out /tmp/smoke.yaml       # tiny shapes on a CPU

What runs, at the sizes the pipeline sends (docs/benchmarks.md):
  yolo     YOLO11m from yolo11m.yaml (random weights), 640x360 JPEG frames (the sample's,
           scaled as an HD video's), jobs of 1, 8 and 32 images, fp32 and fp16; the floor is
           ultralytics' own predict on the decoded frames
  whisper  large-v3-turbo's shapes with random weights (converted to CTranslate2 here),
           a 60 s WAV chunk, sequential and batched, every 30 s window decoding the same
           number of tokens (end of text and timestamps suppressed, no fallback)
  vlm      Qwen3-VL-8B's architecture, random bf16 weights, the real caption request
           (prompt, JSON schema, a 768 px frame) with 150 output tokens, 1 and 8 at once;
           vLLM when it is installed, else the transformers worker, and it says which
A figure is the wall time of the timed calls after warm-up over the items they held:
the time a worker is busy (billed) per item. It writes a profile `vidagent cost-estimate
--profile FILE` reads, and prints each figure against the published one it replaces.
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import sys
import tempfile
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "tests" / "data" / "sample.mp4"

from bench_gpu_profile import machine, report, write_profile  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    yolo_model: str
    yolo_batches: tuple[int, ...]
    frame_size: int
    whisper_model: str
    audio_s: float
    whisper_batch: int
    window_tokens: int  # tokens each 30 s window decodes; real speech is about 100
    vlm_tokens: int
    concurrency: tuple[int, ...]
    seconds: dict[str, float]  # per configuration, after warm-up; at least one call


FULL = Sizes("offline:yolo11m-random", (1, 8, 32), 640, "offline:large-v3-turbo-random", 60.0, 16, 100,
             150, (1, 8), {"yolo": 6.0, "whisper": 15.0, "vlm": 30.0})
SMOKE = Sizes("offline:yolo11n-random", (1, 2), 96, "offline:whisper-tiny-random", 35.0, 2, 4,
              4, (1, 2), {"yolo": 0.0, "whisper": 0.0, "vlm": 0.0})


@dataclass
class Run:
    endpoint: str
    config: str
    unit: str
    units: float
    calls: int
    wall_s: float
    how: str
    extra: dict = field(default_factory=dict)

    @property
    def per_unit(self) -> float:
        return self.wall_s / self.units


class Budget:
    def __init__(self, seconds: float):
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()


def timed(call, seconds: float, warmup: int = 1) -> tuple[int, float]:
    """(calls, wall seconds) of `call` repeated for about `seconds` after `warmup` calls."""
    for _ in range(warmup):
        call()
    calls, started = 0, time.perf_counter()
    while calls == 0 or time.perf_counter() - started < seconds:
        call()
        calls += 1
    return calls, time.perf_counter() - started


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def frames(kind: str, fps: float, size: int) -> list[bytes]:
    """JPEG frames as the sampler makes them from a 16:9 HD video: the sample's frames
    (320x240) through the real sampler, scaled to `size` x 9/16 and encoded at quality 90."""
    import cv2
    import simplejpeg

    from vidagent.media.probe import probe
    from vidagent.media.sampler import FrameSpec, SampledFrame, extract

    items = extract(SAMPLE, probe(SAMPLE), [FrameSpec(kind, fps, size)], None, 90)
    shape = (size, round(size * 9 / 16 / 2) * 2)
    return [simplejpeg.encode_jpeg(cv2.resize(simplejpeg.decode_jpeg(item.jpeg), shape), 90)
            for item in items if isinstance(item, SampledFrame)]


# -- YOLO -----------------------------------------------------------------------------------


def bench_yolo(sizes: Sizes, smoke: bool) -> list[Run]:
    from vidagent.workers import yolo

    jpegs = frames("detect", 10, sizes.frame_size)
    jpegs = (jpegs * (max(sizes.yolo_batches) // len(jpegs) + 1))[:max(sizes.yolo_batches)]
    imgsz = 64 if smoke else 640
    runs = []
    for precision in ("fp32", "fp16"):
        os.environ["VIDAGENT_YOLO_PRECISION"] = precision
        for batch in sizes.yolo_batches:
            job = {"images": [b64(j) for j in jpegs[:batch]], "model": sizes.yolo_model, "imgsz": imgsz}
            out: dict = {}
            calls, wall = timed(lambda: out.update(yolo.handle(job)), sizes.seconds["yolo"], 2)
            ran = out["precision"] + ("" if out["precision"] == precision else f" (asked {precision})")
            runs.append(Run("yolo", f"batch {batch} {ran}", "image", calls * batch, calls, wall,
                            f"yolo.handle() on {batch} base64 JPEG frames, asked {precision}",
                            {"batch": batch, "asked": precision, "precision": out["precision"], **out["timings"]}))
        # The floor: ultralytics' own predict on the same frames, already decoded.
        model = yolo.load(sizes.yolo_model)
        pixels = yolo.decode_all([b64(j) for j in jpegs], 1)
        args = dict(imgsz=imgsz, verbose=False, **yolo.precision_args(precision))
        calls, wall = timed(lambda: model.predict(pixels, **args), sizes.seconds["yolo"], 2)
        runs.append(Run("yolo", f"floor batch {len(pixels)} {precision}", "image", calls * len(pixels),
                        calls, wall, "ultralytics predict() on decoded frames",
                        {"floor": True, "batch": len(pixels), "asked": precision}))
    os.environ.pop("VIDAGENT_YOLO_PRECISION")
    return runs


# -- Whisper --------------------------------------------------------------------------------


def speech_wav(seconds: float) -> bytes:
    """The sample's speech, repeated to `seconds`, as the 16 kHz mono WAV chunks are sent."""
    import numpy as np
    from faster_whisper.audio import decode_audio

    speech = decode_audio(str(SAMPLE), sampling_rate=16000)
    samples = np.resize(speech, int(seconds * 16000))
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def bench_whisper(sizes: Sizes, smoke: bool) -> list[Run]:
    from faster_whisper.tokenizer import Tokenizer

    from vidagent.workers import whisper

    where, compute_type = whisper.device()
    if not smoke:  # fail in seconds, before building the large model, where CUDA cannot run it
        if where != "cuda":
            raise RuntimeError("ctranslate2 sees no CUDA device")
        whisper.handle({"audio_base64": b64(speech_wav(1.0)), "model": SMOKE.whisper_model, "language": "en"})
    model = whisper.load(sizes.whisper_model)
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual)
    suppressed = [-1, tokenizer.eot, *range(tokenizer.timestamp_begin, tokenizer.timestamp_begin + 1501)]
    pinned = {"model": sizes.whisper_model, "language": "en", "enable_vad": False, "without_timestamps": True,
              "temperature_increment_on_fallback": None, "condition_on_previous_text": False,
              "suppress_tokens": ",".join(map(str, suppressed))}

    def window_tokens(job: dict) -> list[int]:
        return [len(s["tokens"]) for s in whisper.handle(job)["segments"]]

    # CTranslate2 decides how max_new_tokens maps to tokens decoded: ask, look, correct once.
    window = dict(pinned, audio_base64=b64(speech_wav(30.0)), batch_size=0)
    ask = sizes.window_tokens
    seen = window_tokens(dict(window, max_new_tokens=ask))[0]
    if seen != sizes.window_tokens:
        ask = min(440, max(1, round(ask * sizes.window_tokens / max(seen, 1))))
        seen = window_tokens(dict(window, max_new_tokens=ask))[0]
    audio = b64(speech_wav(sizes.audio_s))
    runs = []
    for mode, batch in (("sequential", 0), ("batched", sizes.whisper_batch)):
        job = dict(pinned, audio_base64=audio, batch_size=batch, max_new_tokens=ask)
        tokens = window_tokens(job)
        calls, wall = timed(lambda: whisper.handle(job), sizes.seconds["whisper"], 1)
        runs.append(Run("whisper", f"{mode} {compute_type}" + (f" batch {batch}" if batch else ""), "audio_s",
                        calls * sizes.audio_s, calls, wall,
                        f"whisper.handle() on a {sizes.audio_s:g} s WAV, VAD off, beam 5, "
                        f"{len(tokens)} windows of {sorted(set(tokens))} tokens (max_new_tokens {ask})",
                        {"batch_size": batch, "compute_type": compute_type, "window_tokens": tokens}))
    return runs


# -- VLM ------------------------------------------------------------------------------------


def caption_job(tokens: int, model: str) -> dict:
    from vidagent.config import Settings
    from vidagent.media.sampler import SampledFrame
    from vidagent.tasks import caption

    jpeg = frames("caption", 1, 768)[0]  # the pipeline's caption_size
    frame = SampledFrame("caption", 0, 0.0, jpeg, 768, 432)
    settings = Settings(vlm_model=model, vlm_max_tokens=tokens)
    job = caption.build_job(frame, "", settings, caption.load_prompt(None, "caption.txt"))
    job["openai_input"]["min_tokens"] = tokens  # pinned: random weights could stop at once
    return job


def qwen3_vl_8b_random():
    """The worker's Loaded model: Qwen3-VL-8B's shapes, random bf16 weights made on the GPU."""
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    from vidagent.workers import random_models as rm
    from vidagent.workers.vlm import Loaded

    processor = rm.qwen3_vl_processor(rm.QWEN3_VL_IMAGE_SIZE)
    config = rm.qwen3_vl_config(processor, rm.QWEN3_VL_8B_TEXT, rm.QWEN3_VL_8B_VISION)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen3VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    rm.instruct_generation(model, processor.tokenizer)
    return Loaded(processor, model.eval(), "cuda")


def bench_vlm(sizes: Sizes, smoke: bool) -> list[Run]:
    from vidagent.workers import vlm

    name = "offline:qwen3-vl-tiny" if smoke else "bench:qwen3-vl-8b-random"
    job = caption_job(sizes.vlm_tokens, name)
    engine, reason = "transformers", "vLLM is not installed" if not smoke else "smoke"
    if not smoke and _has("vllm"):
        try:
            return bench_vllm(sizes, job)
        except Exception as exc:  # report it and fall back to the worker itself
            reason = f"vLLM failed: {' '.join(str(exc).split())[:200]}"
    if not smoke:
        vlm._models[name] = qwen3_vl_8b_random()
    runs = []
    for at_once in sizes.concurrency:
        outputs: list = []
        with ThreadPoolExecutor(at_once) as pool:
            def burst():
                outputs.extend(pool.map(lambda _: vlm.handle(job), range(at_once)))

            calls, wall = timed(burst, sizes.seconds["vlm"], warmup=0 if runs else 1)
        usage = outputs[-1]["usage"]
        assert usage["completion_tokens"] == sizes.vlm_tokens, usage
        runs.append(Run("vlm", f"{engine} concurrency {at_once}", "caption", calls * at_once, calls, wall,
                        f"vlm.handle() on the caption request, {at_once} at once (the worker runs "
                        f"one at a time); {reason}",
                        {"engine": engine, "prompt_tokens": usage["prompt_tokens"],
                         "completion_tokens": usage["completion_tokens"]}))
    return runs


def bench_vllm(sizes: Sizes, job: dict) -> list[Run]:
    """The same request through vLLM's engine with dummy (random) weights: what RunPod's
    vLLM worker runs, minus its HTTP hop."""
    from vllm import LLM, SamplingParams

    from vidagent.workers import random_models as rm
    from vidagent.workers.vlm import DEFAULT_MAX_PIXELS

    folder = Path(tempfile.mkdtemp(prefix="qwen3-vl-8b-"))
    processor = rm.qwen3_vl_processor(rm.QWEN3_VL_IMAGE_SIZE)
    rm.qwen3_vl_config(processor, rm.QWEN3_VL_8B_TEXT, rm.QWEN3_VL_8B_VISION).save_pretrained(folder)
    processor.save_pretrained(folder)
    llm = LLM(model=str(folder), load_format="dummy", dtype="bfloat16", max_model_len=8192,
              limit_mm_per_prompt={"image": 1, "video": 0}, enable_prefix_caching=True,
              mm_processor_kwargs={"size": {"longest_edge": DEFAULT_MAX_PIXELS, "shortest_edge": 65536}})
    params = SamplingParams(max_tokens=sizes.vlm_tokens, min_tokens=sizes.vlm_tokens, temperature=0)
    messages = job["openai_input"]["messages"]
    runs = []
    for at_once in sizes.concurrency:
        calls, wall = timed(lambda: llm.chat([messages] * at_once, params, use_tqdm=False), sizes.seconds["vlm"], 1)
        runs.append(Run("vlm", f"vllm concurrency {at_once}", "caption", calls * at_once, calls, wall,
                        f"vLLM {_version('vllm')} LLM.chat() on the caption messages, {at_once} at once, "
                        "dummy weights", {"engine": "vllm"}))
    return runs


# -- helpers ---------------------------------------------------------------------------------


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models on whatever device is here, in seconds")
    parser.add_argument("--out", type=Path, help="profile to write (default configs/profile-<gpu>.yaml)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="stop starting sections after this long")
    parser.add_argument("--only", default="yolo,whisper,vlm", help="comma-separated sections")
    args = parser.parse_args(argv)
    import torch

    if not args.smoke and not torch.cuda.is_available():
        print("bench_gpu.py: no CUDA GPU here; run it on one, or with --smoke", file=sys.stderr)
        return 2
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sizes, budget, facts = (SMOKE if args.smoke else FULL), Budget(args.budget_s), machine(args.smoke)
    if args.out:
        out = args.out
    elif args.smoke:  # a smoke profile measures nothing: never beside the real ones
        out = Path(tempfile.gettempdir()) / "vidagent-bench-smoke.yaml"
    else:
        out = ROOT / "configs" / f"profile-{facts['gpu'].split()[-1].lower()}.yaml"
    runs, skipped = [], {}
    for name, section in (("yolo", bench_yolo), ("whisper", bench_whisper), ("vlm", bench_vlm)):
        if name not in args.only.split(","):
            skipped[name] = "not asked for (--only)"
            continue
        if budget.left() <= 0:
            skipped[name] = f"the {args.budget_s:g} s budget was spent"
            continue
        started = time.monotonic()
        try:
            runs += section(sizes, args.smoke)
        except Exception as exc:  # one section's failure leaves the others' figures standing
            skipped[name] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        print(f"{name}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    if len(skipped) == 3:
        print("bench_gpu.py: nothing was measured: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()), file=sys.stderr)
        return 1
    command = "python scripts/bench_gpu.py " + " ".join(argv if argv is not None else sys.argv[1:])
    cuda = torch.cuda.is_available() and not args.smoke
    profile = write_profile(runs, skipped, facts, out, args.smoke, cuda, command.strip())
    report(runs, skipped, profile, facts)
    print(f"Wrote {out}; use it with: vidagent cost-estimate --profile {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
