"""Our transcription jobs against RunPod's official worker-faster_whisper, as published.

Facts from runpod-workers/worker-faster_whisper at bd500dc (2026): the input schema in
src/rp_schema.py (names, types, defaults), the model names in src/predict.py
(AVAILABLE_MODELS), the output in README.md and src/predict.py (segments without words;
with word_timestamps, one flat `word_timestamps` list beside them; no language
probability). Its handler validates input with RunPod's SDK (`rp_validator.validate`),
which refuses unknown keys: the same validator checks our payload here.
"""

import numpy as np
import pytest
from runpod.serverless.utils.rp_validator import validate

from vidagent.config import Settings
from vidagent.media.audio import SAMPLE_RATE, AudioChunk
from vidagent.tasks import transcribe

# name: (type, default), as the worker declares them (every key optional).
OFFICIAL_INPUT = {
    "audio": (str, None), "audio_base64": (str, None), "model": (str, "base"),
    "transcription": (str, "plain_text"), "translate": (bool, False), "translation": (str, "plain_text"),
    "language": (str, None), "temperature": (float, 0), "best_of": (int, 5), "beam_size": (int, 5),
    "patience": (float, 1.0), "length_penalty": (float, 0), "suppress_tokens": (str, "-1"),
    "initial_prompt": (str, None), "condition_on_previous_text": (bool, True),
    "temperature_increment_on_fallback": (float, 0.2), "compression_ratio_threshold": (float, 2.4),
    "logprob_threshold": (float, -1.0), "no_speech_threshold": (float, 0.6), "enable_vad": (bool, False),
    "word_timestamps": (bool, False),
}
OFFICIAL_MODELS = {"tiny", "base", "small", "medium", "large-v1", "large-v2", "large-v3", "turbo"}


def schema() -> dict:
    return {name: {"type": kind, "required": False, "default": default}
            for name, (kind, default) in OFFICIAL_INPUT.items()}


def chunk(start: float = 30.0, seconds: float = 8.0) -> AudioChunk:
    tone = (np.sin(np.arange(int(seconds * SAMPLE_RATE)) / 5) * 8000).astype(np.int16)
    return AudioChunk(index=0, start=start, samples=tone)


@pytest.mark.parametrize("settings", [Settings(), Settings(language="de", enable_vad=False)])
def test_our_job_passes_the_official_workers_validation(settings):
    payload = transcribe.build_job(chunk(), settings, language="en")
    checked = validate(payload, schema())
    assert "errors" not in checked, checked
    assert payload["model"] in OFFICIAL_MODELS  # the default names large-v3-turbo as it does
    assert payload["word_timestamps"] is True


def test_the_official_output_with_its_flat_word_list_gives_word_timed_segments():
    # Whisper's own segment starts 4 s before anyone speaks (after silence), and holds two
    # sentences with a pause between them; the flat word list says when each word was said.
    output = {
        "segments": [{"id": 1, "seek": 0, "start": 0.0, "end": 6.6, "text": " Hello there. Goodbye now.",
                      "tokens": [1, 2], "temperature": 0.0, "avg_logprob": -0.3, "compression_ratio": 1.1,
                      "no_speech_prob": 0.01}],
        "detected_language": "en", "transcription": "Hello there. Goodbye now.", "translation": None,
        "device": "cuda", "model": "turbo",
        "word_timestamps": [{"word": " Hello", "start": 4.0, "end": 4.4}, {"word": " there.", "start": 4.4, "end": 4.9},
                            {"word": " Goodbye", "start": 6.0, "end": 6.3}, {"word": " now.", "start": 6.3, "end": 6.6}],
    }
    got = transcribe.parse_result(output, chunk(start=30.0), Settings())
    assert got.had_words and got.language == "en" and got.probability is None
    assert [(s.start, s.end, s.text) for s in got.segments] == [(34.0, 34.9, "Hello there."),
                                                                 (36.0, 36.6, "Goodbye now.")]


def test_without_any_words_the_segment_times_stay_and_say_so():
    output = {"segments": [{"id": 1, "seek": 0, "start": 0.11, "end": 3.11, "text": " Hello and welcome!",
                            "tokens": [50364], "temperature": 0.1, "avg_logprob": -0.83,
                            "compression_ratio": 0.58, "no_speech_prob": 0.15}],
              "detected_language": "en", "transcription": "Hello and welcome!", "translation": None,
              "device": "cuda", "model": "turbo"}
    got = transcribe.parse_result(output, chunk(start=10.0), Settings())
    assert not got.had_words
    assert [(s.start, s.end, s.text) for s in got.segments] == [(10.11, 13.11, "Hello and welcome!")]
