"""The workers through their JSON contract, with real models that need no hub."""

import base64

import pytest

from text_match import TINY_EN_MAX_WER, assert_words
from vidagent.media.probe import probe
from vidagent.media.sampler import FrameSpec, SampledFrame, extract
from vidagent.media.audio import AudioChunk
from vidagent.media.soundtrack import extract_audio
from vidagent.workers import WorkerInputError, get_handler

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sample_items(sample):
    items = list(extract(sample, probe(sample), [FrameSpec("detect", 1, 640)], 60.0))
    frames = [i for i in items if isinstance(i, SampledFrame)]
    chunks = [i for i in items if isinstance(i, AudioChunk)]
    return frames, chunks


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_yolo_batch_matches_ultralytics_predict(sample_items, yolo_model_path):
    import cv2
    import numpy as np
    from ultralytics import YOLO

    frames = sample_items[0][:4]
    settings = dict(conf=0.0, iou=0.5, imgsz=320, max_det=20)
    output = get_handler("yolo")({"images": [b64(f.jpeg) for f in frames], "model": yolo_model_path, **settings})

    assert len(output["results"]) == 4
    direct = YOLO(yolo_model_path).predict(
        [cv2.imdecode(np.frombuffer(f.jpeg, np.uint8), cv2.IMREAD_COLOR) for f in frames],
        verbose=False, **settings,
    )
    for ours, theirs, frame in zip(output["results"], direct, frames):
        assert (ours["width"], ours["height"]) == (frame.width, frame.height)
        assert len(ours["detections"]) == 20  # conf 0 and random weights: max_det boxes
        assert [d["box"] for d in ours["detections"]] == theirs.boxes.xyxy.tolist()
        assert [d["confidence"] for d in ours["detections"]] == theirs.boxes.conf.tolist()
        assert [d["class_id"] for d in ours["detections"]] == [int(c) for c in theirs.boxes.cls.tolist()]
        for d in ours["detections"]:
            x1, y1, x2, y2 = d["box"]
            assert 0 <= x1 <= x2 <= frame.width and 0 <= y1 <= y2 <= frame.height
            assert d["label"] == theirs.names[d["class_id"]]


def test_yolo_single_image_form_and_classes(sample_items, yolo_model_path):
    frame = sample_items[0][0]
    output = get_handler("yolo")(
        {"image": b64(frame.jpeg), "model": yolo_model_path, "conf": 0.0, "classes": [3], "max_det": 5}
    )
    assert len(output["results"]) == 1
    assert {d["class_id"] for d in output["results"][0]["detections"]} <= {3}


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "exactly one of 'images'"),
        ({"images": []}, "'images' is empty"),
        ({"images": ["%%%"]}, "image 0: not valid base64"),
        ({"images": [base64.b64encode(b"not an image").decode()]}, "image 0: not a decodable image"),
        ({"image": "x", "conf": 2}, "input field 'conf'"),
        ({"image": "x", "model": "/no/such/model.pt"}, "not found"),
    ],
)
def test_yolo_bad_input_fails_clearly(payload, message, yolo_model_path):
    payload.setdefault("model", yolo_model_path)
    with pytest.raises(WorkerInputError, match=message):
        get_handler("yolo")(payload)


def test_whisper_transcribes_the_sample(sample, sample_truth):
    # The worker's own times are seconds into the audio it is sent: send it whole (the
    # pipeline's chunks shorten long silences, and map times back themselves).
    chunk = next(extract_audio(sample, probe(sample), 60.0, keep_silence_s=None))
    output = get_handler("whisper")(
        {"audio_base64": b64(chunk.wav_bytes()), "model": "offline:tiny.en", "word_timestamps": True,
         "transcription": "vtt"}
    )
    assert_words(" ".join(s["text"] for s in output["segments"]), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    assert output["detected_language"] == "en"
    assert output["segments"][0]["start"] == pytest.approx(sample_truth["speech_start_s"], abs=0.6)
    assert output["segments"][-1]["end"] == pytest.approx(sample_truth["speech_end_s"], abs=1.0)
    # worker-faster_whisper's output contract
    for key in ("id", "seek", "start", "end", "text", "tokens", "temperature", "avg_logprob",
                "compression_ratio", "no_speech_prob"):
        assert key in output["segments"][0]
    assert output["transcription"].startswith("WEBVTT")
    words = output["word_timestamps"]
    assert_words(" ".join(w["word"] for w in words), sample_truth["text"], max_wer=TINY_EN_MAX_WER)
    assert all(w["start"] <= w["end"] for w in words)


def test_whisper_accepts_a_local_path_and_ignores_unknown_keys(sample_items, sample_truth, tmp_path):
    wav = tmp_path / "speech.wav"
    wav.write_bytes(sample_items[1][0].wav_bytes())
    output = get_handler("whisper")(
        {"audio": str(wav), "model": "offline:tiny.en", "enable_vad": True, "some_future_key": 1}
    )
    assert_words(output["transcription"], sample_truth["text"], max_wer=TINY_EN_MAX_WER)


@pytest.mark.parametrize(
    "payload, message",
    [
        ({}, "exactly one of 'audio'"),
        ({"audio_base64": "%%%"}, "not valid base64"),
        ({"audio": "/no/such.wav"}, "no such file"),
        ({"audio_base64": base64.b64encode(b"garbage" * 100).decode()}, "audio cannot be decoded"),
        ({"audio_base64": "AAAA", "model": "offline:nope"}, "cannot be loaded"),
    ],
)
def test_whisper_bad_input_fails_clearly(payload, message):
    payload.setdefault("model", "offline:tiny.en")
    with pytest.raises(WorkerInputError, match=message):
        get_handler("whisper")(payload)
