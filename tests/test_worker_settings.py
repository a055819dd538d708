"""The workers' GPU settings, checked on the CPU path with real models: what each worker
asks of its library (precision, batch sizes, pixel budget) and what the library did with
it. The speed these settings buy is measured by scripts/bench_gpu.py on a GPU."""

import base64
import io
import shutil

import numpy as np
import pytest

from text_match import TINY_EN_MAX_WER, assert_words
from vidagent.media.audio import AudioChunk
from vidagent.media.probe import probe
from vidagent.media.sampler import FrameSpec, SampledFrame, extract
from vidagent.workers import WorkerInputError, WorkerSettingError, whisper, yolo
from vidagent.workers.catalog import canonical_whisper, resolve_whisper

pytestmark = pytest.mark.slow


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def sample_items(sample):
    items = list(extract(sample, probe(sample), [FrameSpec("detect", 1, 640)], 60.0))
    frames = [i for i in items if isinstance(i, SampledFrame)]
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    return frames, chunks


# -- YOLO ---------------------------------------------------------------------------------


def test_yolo_precision_defaults_to_fp16_on_cuda_only(monkeypatch):
    assert yolo.options(cuda=True).precision == "fp16"
    assert yolo.options(cuda=False).precision == "fp32"
    monkeypatch.setenv("VIDAGENT_YOLO_PRECISION", "fp32")
    assert yolo.options(cuda=True).precision == "fp32"


def test_yolo_fp16_asked_on_a_cpu_is_ignored_by_ultralytics(sample_items, yolo_model_path, monkeypatch):
    frames = sample_items[0][:2]
    job = {"images": [b64(f.jpeg) for f in frames], "model": yolo_model_path, "conf": 0.0, "max_det": 10}
    fp32 = yolo.handle(job)
    monkeypatch.setenv("VIDAGENT_YOLO_PRECISION", "fp16")
    fp16 = yolo.handle(job)

    predictor = yolo.load(yolo_model_path).predictor
    assert predictor.args.quantize == 16  # what the worker asked for...
    assert predictor.model.fp16 is False  # ...and what ultralytics did with it on a CPU
    assert (fp32["precision"], fp16["precision"]) == ("fp32", "fp32")
    assert fp16["results"] == fp32["results"]


def test_yolo_inference_batch_bounds_each_forward_pass(sample_items, yolo_model_path, monkeypatch):
    frames = sample_items[0][:7]
    job = {"images": [b64(f.jpeg) for f in frames], "model": yolo_model_path, "conf": 0.0,
           "max_det": 10, "imgsz": 320}
    whole = yolo.handle(job)  # default inference batch (32): one forward pass for all 7

    monkeypatch.setenv("VIDAGENT_YOLO_INFER_BATCH", "3")
    backend = yolo.load(yolo_model_path).predictor.model
    seen = []
    hook = backend.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[0]))
    try:
        sliced = yolo.handle(job)
    finally:
        hook.remove()

    assert seen == [3, 3, 1]
    assert len(sliced["results"]) == 7
    for ours, theirs in zip(sliced["results"], whole["results"]):
        assert (ours["width"], ours["height"]) == (theirs["width"], theirs["height"])
        assert [d["class_id"] for d in ours["detections"]] == [d["class_id"] for d in theirs["detections"]]
        np.testing.assert_allclose([d["box"] for d in ours["detections"]],
                                   [d["box"] for d in theirs["detections"]], atol=1e-3)


def test_yolo_decodes_a_batch_in_its_thread_pool_with_opencv_s_pixels(sample_items, monkeypatch):
    import cv2
    from PIL import Image

    frames = sample_items[0][:6]
    png = io.BytesIO()
    Image.fromarray(np.full((30, 40, 3), 90, np.uint8)).save(png, "PNG")
    images = [b64(f.jpeg) for f in frames] + [b64(png.getvalue())]

    threads = []
    real = yolo.decode_image

    def watched(data, position):
        import threading

        threads.append(threading.current_thread().name)
        return real(data, position)

    monkeypatch.setattr(yolo, "decode_image", watched)
    decoded = yolo.decode_all(images, threads=4)

    assert len(threads) == 7 and all(name.startswith("yolo-decode") for name in threads)
    for pixels, data in zip(decoded, images):
        expected = cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)
        np.testing.assert_array_equal(pixels, expected)


def test_yolo_bad_worker_setting_names_the_variable(sample_items, yolo_model_path, monkeypatch):
    monkeypatch.setenv("VIDAGENT_YOLO_INFER_BATCH", "0")
    with pytest.raises(WorkerSettingError, match=r"^VIDAGENT_YOLO_INFER_BATCH: expected a whole number >= 1 \(got '0'\)$"):
        yolo.handle({"image": b64(sample_items[0][0].jpeg), "model": yolo_model_path})
    monkeypatch.setenv("VIDAGENT_YOLO_INFER_BATCH", "8")
    monkeypatch.setenv("VIDAGENT_YOLO_PRECISION", "half")
    with pytest.raises(WorkerInputError, match="VIDAGENT_YOLO_PRECISION: expected one of auto, fp16, fp32"):
        yolo.handle({"image": b64(sample_items[0][0].jpeg), "model": yolo_model_path})


# -- Whisper --------------------------------------------------------------------------------


def test_turbo_is_the_baked_large_v3_turbo(sample_items, sample_truth, tmp_path, monkeypatch):
    """The official worker's clients send `turbo`: our image must answer from the
    large-v3-turbo it baked, not look for another model on the hub."""
    baked = tmp_path / "models"
    shutil.copytree(resolve_whisper("offline:tiny.en"), baked / "large-v3-turbo")
    monkeypatch.setenv("VIDAGENT_MODEL_DIR", str(baked))
    assert canonical_whisper("turbo") == "large-v3-turbo"
    assert resolve_whisper("turbo") == str(baked / "large-v3-turbo")

    output = whisper.handle({"audio_base64": b64(sample_items[1][0].wav_bytes()), "model": "turbo"})
    assert_words(output["transcription"], sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    assert output["model"] == "turbo"
    assert whisper.load("turbo") is whisper.load("large-v3-turbo")


def test_whisper_compute_type_falls_back_to_what_the_cpu_runs(sample_items, sample_truth, monkeypatch):
    import ctranslate2

    audio = b64(sample_items[1][0].wav_bytes())
    assert "float16" not in ctranslate2.get_supported_compute_types("cpu")
    monkeypatch.setenv("VIDAGENT_WHISPER_COMPUTE_TYPE", "float16")
    output = whisper.handle({"audio_base64": audio, "model": "offline:tiny.en"})
    assert (output["device"], output["compute_type"]) == ("cpu", "int8")
    monkeypatch.setenv("VIDAGENT_WHISPER_COMPUTE_TYPE", "float32")
    output = whisper.handle({"audio_base64": audio, "model": "offline:tiny.en"})
    assert output["compute_type"] == "float32"
    assert_words(output["transcription"], sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    monkeypatch.setenv("VIDAGENT_WHISPER_COMPUTE_TYPE", "fp16")  # a typo is not a fallback
    with pytest.raises(WorkerSettingError, match="^VIDAGENT_WHISPER_COMPUTE_TYPE: expected one of auto, int8"):
        whisper.handle({"audio_base64": audio, "model": "offline:tiny.en"})


@pytest.fixture(scope="module")
def long_speech(clips, sample):
    """About 35 s of the sample's speech, looped: two 30 s windows, the last one short."""
    return clips("speech35.wav", "-stream_loop", "4", "-i", str(sample), "-vn", "-t", "35",
                 "-ac", "1", "-ar", "16000")


@pytest.fixture
def batched_calls(monkeypatch):
    """Each call the worker makes to faster-whisper's batched pipeline, as it made it."""
    from faster_whisper import BatchedInferencePipeline

    calls = []
    real = BatchedInferencePipeline.transcribe

    def transcribe(self, audio, **options):
        calls.append(dict(options, seconds=len(audio) / 16000))
        return real(self, audio, **options)

    monkeypatch.setattr(BatchedInferencePipeline, "transcribe", transcribe)
    return calls


def test_whisper_batches_long_audio_when_the_worker_is_set_to(long_speech, batched_calls, monkeypatch):
    job = {"audio": str(long_speech), "model": "offline:tiny.en"}
    sequential = whisper.handle(job)  # a CPU's default: sequential
    assert sequential["batch_size"] == 0 and batched_calls == []

    monkeypatch.setenv("VIDAGENT_WHISPER_BATCH_SIZE", "4")  # what CUDA gets by default (16)
    batched = whisper.handle(job)
    assert batched["batch_size"] == 4
    [call] = batched_calls
    seconds = batched["duration"]
    assert call["batch_size"] == 4 and call["seconds"] == pytest.approx(seconds) and 30 < seconds < 36
    # No VAD asked for: fixed 30 s windows, not a VAD the job switched off.
    assert [(w["start"], w["end"]) for w in call["clip_timestamps"]] == [(0, 30), (30, pytest.approx(seconds))]
    # Batched windows hear what sequential decoding hears, give or take tiny.en's slips.
    assert_words(batched["transcription"], sequential["transcription"], max_wer=TINY_EN_MAX_WER)
    assert batched["segments"][-1]["end"] > 30

    short = whisper.handle({"audio": str(long_speech), "model": "offline:tiny.en", "batch_size": 0})
    assert short["batch_size"] == 0 and len(batched_calls) == 1


def test_whisper_short_audio_stays_sequential(sample_items, batched_calls, monkeypatch):
    monkeypatch.setenv("VIDAGENT_WHISPER_BATCH_SIZE", "4")
    chunk = sample_items[1][0]  # 10 s: one window, nothing to batch
    assert chunk.duration < whisper.DEFAULT_BATCH_MIN_S
    output = whisper.handle({"audio_base64": b64(chunk.wav_bytes()), "model": "offline:tiny.en"})
    assert output["batch_size"] == 0 and batched_calls == []
    monkeypatch.setenv("VIDAGENT_WHISPER_BATCH_MIN_S", "5")
    output = whisper.handle({"audio_base64": b64(chunk.wav_bytes()), "model": "offline:tiny.en",
                             "enable_vad": True})
    assert output["batch_size"] == 4 and batched_calls[0]["vad_filter"] is True


def test_whisper_decode_length_can_be_pinned(long_speech):
    """End of text and timestamps suppressed, max_new_tokens set, no conditioning on the
    previous window: every 30 s window decodes the same number of tokens, whatever its
    speech (the last is 5 s long) and in either mode. bench_gpu.py pins random weights so."""
    model = whisper.load("offline:tiny.en")
    from faster_whisper.tokenizer import Tokenizer

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual)
    suppressed = [-1, tokenizer.eot, *range(tokenizer.timestamp_begin, tokenizer.timestamp_begin + 1501)]
    pinned = {
        "audio": str(long_speech), "model": "offline:tiny.en", "language": "en", "max_new_tokens": 12,
        "without_timestamps": True, "temperature_increment_on_fallback": None,
        "condition_on_previous_text": False, "suppress_tokens": ",".join(map(str, suppressed)),
    }
    counts = {}
    for batch_size in (0, 2):
        output = whisper.handle(dict(pinned, batch_size=batch_size))
        assert output["batch_size"] == batch_size
        counts[batch_size] = [len(s["tokens"]) for s in output["segments"]]
    free = whisper.handle(dict(pinned, max_new_tokens=None, suppress_tokens="-1"))

    assert len(counts[0]) == 2 and len(set(counts[0])) == 1 and counts[2] == counts[0]
    assert counts[0][0] <= 12
    assert len({len(s["tokens"]) for s in free["segments"]}) > 1  # unpinned, the speech decides


def test_whisper_bad_worker_setting_names_the_variable(sample_items, monkeypatch):
    monkeypatch.setenv("VIDAGENT_WHISPER_BATCH_SIZE", "many")
    monkeypatch.setenv("VIDAGENT_WHISPER_BATCH_MIN_S", "0")
    with pytest.raises(WorkerSettingError, match=r"^VIDAGENT_WHISPER_BATCH_SIZE: expected auto or a whole number"):
        whisper.handle({"audio_base64": b64(sample_items[1][0].wav_bytes()), "model": "offline:tiny.en"})


# -- VLM -------------------------------------------------------------------------------------


def vlm_job(image_size: tuple[int, int] | None, **extra) -> dict:
    from PIL import Image

    content = [{"type": "text", "text": "Describe the frame."}]
    if image_size:
        buffer = io.BytesIO()
        Image.new("RGB", image_size, (30, 120, 200)).save(buffer, "JPEG")
        url = "data:image/jpeg;base64," + b64(buffer.getvalue())
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    body = {"model": "offline:qwen3-vl-tiny", "messages": [{"role": "user", "content": content}],
            "max_tokens": 2, "temperature": 0, **extra}
    return {"openai_route": "/v1/chat/completions", "openai_input": body}


def image_tokens(image_size) -> int:
    from vidagent.workers import vlm

    with_image = vlm.handle(vlm_job(image_size))["usage"]["prompt_tokens"]
    return with_image - vlm.handle(vlm_job(None))["usage"]["prompt_tokens"] - 2  # vision start/end


def test_vlm_pixel_budget_reaches_the_image_processor(monkeypatch):
    # Qwen3-VL: one vision token per 32 x 32 pixels (16 px patches, merged 2 x 2).
    assert image_tokens((256, 256)) == (256 // 32) ** 2  # within the default budget
    monkeypatch.setenv("VIDAGENT_VLM_MAX_PIXELS", str(128 * 128))
    assert image_tokens((256, 256)) == (128 // 32) ** 2  # scaled down to the budget
    assert image_tokens((128, 64)) == (128 // 32) * (64 // 32)  # smaller images stay as they are
    monkeypatch.setenv("VIDAGENT_VLM_MAX_PIXELS", "10")
    with pytest.raises(WorkerSettingError, match=r"^VIDAGENT_VLM_MAX_PIXELS: expected a whole number >= 1024"):
        image_tokens((64, 64))


def test_vlm_min_tokens_pins_the_reply_length():
    from vidagent.workers import vlm

    output = vlm.handle(vlm_job((64, 64), max_tokens=9, min_tokens=9))
    assert output["usage"]["completion_tokens"] == 9
    assert output["choices"][0]["finish_reason"] == "length"
