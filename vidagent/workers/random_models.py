"""Random-weight models built here, for machines without a model hub (catalog.py names them).

Each is the real architecture in the real library's classes, so loading and inference run
the code the trained model runs: YOLO11 from ultralytics' yaml files, Whisper converted to
CTranslate2 as faster-whisper's own models are, and Qwen3-VL from transformers' classes.
Their outputs mean nothing. All seeded, so every machine builds the same weights.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def build_random_yolo(arch: str, path: Path) -> None:
    """YOLO11 from the architecture file that ships in ultralytics, seeded random weights."""
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".pt", delete=False) as tmp:
        model.save(tmp.name)
    os.replace(tmp.name, path)


# Whisper shapes for random-weight models. large-v3-turbo's are those of its published
# config (openai/whisper-large-v3-turbo: 32 encoder and 4 decoder layers of width 1280, 128
# mel bins, 51,866 tokens): the same arithmetic as the trained model, for benchmarks.
RANDOM_WHISPER = {
    "large-v3-turbo-random": dict(d_model=1280, encoder_layers=32, decoder_layers=4, heads=20, ffn=5120),
    "whisper-tiny-random": dict(d_model=64, encoder_layers=2, decoder_layers=2, heads=4, ffn=128),
}
_WHISPER_VOCAB = 51866  # large-v3's layout: 50,257 text tokens, specials, 1,501 timestamps


def build_random_whisper(folder: Path, shape: dict[str, int]) -> None:
    """A CTranslate2 Whisper with random weights and large-v3's vocabulary layout, made as
    faster-whisper's own models are: a transformers model converted by ctranslate2's
    converter (float16), with tokenizer.json and preprocessor_config.json beside it.
    Needs transformers (the [vlm] extra) at build time only. Seeded."""
    import tempfile as tmp

    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor
    from transformers import WhisperForConditionalGeneration

    tokenizer, languages = _random_whisper_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    config = WhisperConfig(
        vocab_size=_WHISPER_VOCAB, num_mel_bins=128, d_model=shape["d_model"],
        encoder_layers=shape["encoder_layers"], decoder_layers=shape["decoder_layers"],
        encoder_attention_heads=shape["heads"], decoder_attention_heads=shape["heads"],
        encoder_ffn_dim=shape["ffn"], decoder_ffn_dim=shape["ffn"],
        max_source_positions=1500, max_target_positions=448,
        pad_token_id=token_id("<|endoftext|>"), bos_token_id=token_id("<|endoftext|>"),
        eos_token_id=token_id("<|endoftext|>"), decoder_start_token_id=token_id("<|startoftranscript|>"),
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = WhisperForConditionalGeneration(config).eval()
    model.generation_config = GenerationConfig(
        suppress_tokens=[], begin_suppress_tokens=[220, token_id("<|endoftext|>")],
        lang_to_id={f"<|{code}|>": token_id(f"<|{code}|>") for code in languages},
    )

    class InMemory(TransformersConverter):  # converts the model above, not one on the hub
        def load_model(self, model_class, model_name_or_path, **kwargs):
            return model

        def load_tokenizer(self, tokenizer_class, model_name_or_path, **kwargs):
            return tokenizer

    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()  # the converter's own deprecation warnings
    try:
        with tmp.TemporaryDirectory() as source:
            config.save_pretrained(source)  # the converter reads the architecture from here
            InMemory(source).convert(str(folder), quantization="float16", force=True)
    finally:
        transformers_logging.set_verbosity(verbosity)
    tokenizer.backend_tokenizer.save(str(folder / "tokenizer.json"))
    WhisperFeatureExtractor(feature_size=128).to_json_file(str(folder / "preprocessor_config.json"))


def _random_whisper_tokenizer():
    """Ids laid out as large-v3's: text tokens, <|endoftext|> at 50257, then the start,
    language and task tokens, <|notimestamps|> at 50364 (the converter adds timestamps).
    Text tokens beyond the byte alphabet are letter strings: their words mean nothing."""
    import string

    from faster_whisper.tokenizer import _LANGUAGE_CODES
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {char: i for i, char in enumerate(sorted(alphabet))}
    letters = string.ascii_lowercase
    n = 0
    while len(vocab) < 50257:
        word, k = "", n
        for _ in range(3):
            k, r = divmod(k, 26)
            word = letters[r] + word
        vocab.setdefault("Ġ" + word + letters[k % 26], len(vocab))
        n += 1
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|startoftranscript|>", *(f"<|{c}|>" for c in _LANGUAGE_CODES),
                "<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>",
                "<|notimestamps|>"]
    backend.add_special_tokens(specials)
    assert backend.token_to_id("<|notimestamps|>") == 50364, "large-v3's layout"
    wrapped = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|endoftext|>",
                                      eos_token="<|endoftext|>", unk_token="<|endoftext|>")
    return wrapped, _LANGUAGE_CODES


# Qwen's own special tokens, in Qwen's order, so ids keep their relative layout.
QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",
    "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>", "<|box_end|>",
    "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
]

# What the tiny tokenizer learns its merges from: the words captioning prompts use.
_TINY_CORPUS = """\
system user assistant
You describe video frames for a timeline. Describe the image in one short sentence.
A person walks a dog along the street while a red car and a bicycle pass by.
The scene shows people, cars, trees, buildings, a table, a chair and the sky.
Answer with JSON only, matching this JSON schema: {"caption": "string", "objects": ["string"]}
What is happening in these frames? What changed between the first and the second image?
"""

# Shortest possible Qwen-style template: ChatML turns, one vision block per image part.
_TINY_CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message.role + '\\n' -}}"
    "{%- if message.content is string -%}{{- message.content -}}"
    "{%- else -%}{%- for part in message.content -%}"
    "{%- if part.type == 'image' -%}{{- '<|vision_start|><|image_pad|><|vision_end|>' -}}"
    "{%- elif part.type == 'text' -%}{{- part.text -}}{%- endif -%}"
    "{%- endfor -%}{%- endif -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

# Qwen3-VL's real vision geometry (patch 16, 2x2 merge, 2-frame temporal patches) at toy width.
_PATCH, _MERGE, _TEMPORAL = 16, 2, 2


# Qwen3-VL-8B-Instruct's shapes, from its published config.json, for benchmarks that need
# the 8B model's arithmetic (scripts/bench_gpu.py); the vocabulary keeps its full size so
# the output layer costs what it costs there.
QWEN3_VL_8B_TEXT = dict(
    vocab_size=151936, hidden_size=4096, intermediate_size=12288, num_hidden_layers=36,
    num_attention_heads=32, num_key_value_heads=8, head_dim=128, max_position_embeddings=262144,
    rope_parameters={"rope_type": "default", "rope_theta": 5000000.0, "mrope_section": [24, 20, 20],
                     "mrope_interleaved": True},
)
QWEN3_VL_8B_VISION = dict(
    depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16, out_hidden_size=4096,
    num_position_embeddings=2304, deepstack_visual_indexes=[8, 16, 24], hidden_act="gelu_pytorch_tanh",
)
# Qwen3-VL-8B's image processor bounds, in pixels (its preprocessor_config.json).
QWEN3_VL_IMAGE_SIZE = {"shortest_edge": 65536, "longest_edge": 16777216}


def qwen3_vl_processor(size: dict[str, int]):
    """Qwen3VLProcessor with the tiny tokenizer, the short chat template and Qwen3-VL's
    real vision geometry; `size` bounds images in pixels."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keep the CLI's display clean
    geometry = dict(patch_size=_PATCH, temporal_patch_size=_TEMPORAL, merge_size=_MERGE)
    return Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, **geometry),
        tokenizer=_tiny_qwen_tokenizer(),
        video_processor=Qwen3VLVideoProcessor(**geometry),
        chat_template=_TINY_CHAT_TEMPLATE,
    )


def qwen3_vl_config(processor, text: dict, vision: dict):
    """A Qwen3VLConfig of these shapes whose special token ids are the processor's."""
    from transformers import Qwen3VLConfig

    tokenizer = processor.tokenizer
    token_id = tokenizer.convert_tokens_to_ids
    text = dict(text, vocab_size=max(len(tokenizer), text.get("vocab_size", 0)),
                pad_token_id=token_id("<|endoftext|>"))
    vision = dict(vision, patch_size=_PATCH, spatial_merge_size=_MERGE, temporal_patch_size=_TEMPORAL)
    config = Qwen3VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
    )
    config.architectures = ["Qwen3VLForConditionalGeneration"]
    return config


def instruct_generation(model, tokenizer) -> None:
    """As Qwen3-VL-Instruct: a turn ends at <|im_end|>, a document at <|endoftext|>."""
    token_id = tokenizer.convert_tokens_to_ids
    model.generation_config.eos_token_id = [token_id("<|im_end|>"), token_id("<|endoftext|>")]
    model.generation_config.pad_token_id = token_id("<|endoftext|>")


def build_qwen3_vl_tiny(folder: Path) -> None:
    """A random-weight Qwen3-VL (tokenizer, processors, model) saved with `save_pretrained`.

    Every piece is the real transformers class, so loading it with `from_pretrained` and
    generating runs the same code as Qwen3-VL-8B, in a second and ~1 MB, with no hub.
    Its output is noise. Seeded, so every machine builds the same weights.
    """
    import torch
    from transformers import Qwen3VLForConditionalGeneration

    # Small images stay small: 64x48 is resized to 64x64, 4x4 patches, 4 tokens after the
    # 2x2 merge; nothing grows past 256x256 (64 tokens), so CPU runs stay quick.
    processor = qwen3_vl_processor({"shortest_edge": 32 * 32, "longest_edge": 256 * 256})
    config = qwen3_vl_config(
        processor,
        text=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            # RoPE has no position table: a long context costs nothing on disk, and real
            # prompts (caption prompt + JSON schema + speech context) fit with room to spare.
            max_position_embeddings=32768,
            # mrope_section splits head_dim / 2 = 8 rotary frequencies over (t, h, w).
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [4, 2, 2],
                "mrope_interleaved": True,
            },
        ),
        vision=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=64,
            num_position_embeddings=64,  # a square (8x8) grid, as the model requires
            deepstack_visual_indexes=[1],
        ),
    )
    with torch.random.fork_rng():  # seed the build without disturbing the caller's RNG
        torch.manual_seed(0)
        model = Qwen3VLForConditionalGeneration(config)
    instruct_generation(model, processor.tokenizer)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _tiny_qwen_tokenizer():
    """A byte-level BPE learnt from `_TINY_CORPUS` with Qwen2's pre-tokenizer, as a Qwen2Tokenizer."""
    import json

    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=384, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator(_TINY_CORPUS.splitlines(), trainer)
    learnt = json.loads(bpe.to_str())["model"]
    vocab = dict(learnt["vocab"])
    for token in QWEN_SPECIAL_TOKENS:  # after the learnt tokens, as in Qwen's vocabulary
        vocab[token] = len(vocab)
    return Qwen2Tokenizer(
        vocab=vocab,
        merges=[tuple(pair) for pair in learnt["merges"]],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        extra_special_tokens=QWEN_SPECIAL_TOKENS[1:],
    )
