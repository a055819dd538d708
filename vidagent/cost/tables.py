"""The price table (configs/prices.yaml) and the time profile (configs/profile.yaml):
their schema, their files, and what measured usage costs at those prices.

A profile's figure per endpoint is either `published` (a benchmark someone else ran,
scaled to our pool, with its `source`) or `measured` (scripts/bench_gpu.py on a named GPU,
or `vidagent cost-estimate --profile-from` over real runs' reports). The estimate says
which, endpoint by endpoint.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date as Date
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..config import Settings, yaml_mapping
from ..errors import ConfigError
from ..report.model import EndpointUsage

ENDPOINTS = ("yolo", "whisper", "vlm")
Endpoint = Literal["yolo", "whisper", "vlm", "segment"]
UNITS = {"yolo": "image", "whisper": "audio_s", "vlm": "caption"}

# configs/ in a checkout; the wheel carries the same files in vidagent/ (pyproject.toml).
_DATA_DIRS = (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[2] / "configs")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _iso_date(value: Any) -> Any:
    # YAML reads an unquoted 2026-11-27 as a date; keep it as the text it was.
    return value.isoformat() if isinstance(value, Date) else value


class Pool(_Strict):
    gpus: str
    memory_gb: int = Field(gt=0)
    flex_usd_per_s: float = Field(gt=0)
    active_usd_per_s: float = Field(gt=0)
    source: str = Field(min_length=1)
    date: str = Field(min_length=1)

    _date_as_text = field_validator("date", mode="before")(_iso_date)

    def has_gpu(self, gpu: str) -> bool:
        """Whether `gpu` ("NVIDIA H200", "NVIDIA A100-SXM4-80GB") names one of this
        pool's cards, by model number: the first word of each card in `gpus`."""
        words = set(re.findall(r"[a-z0-9]+", gpu.lower()))
        cards = (re.findall(r"[a-z0-9]+", card.lower().replace("rtx", "")) for card in self.gpus.split(","))
        return any(card and card[0] in words for card in cards)


class PriceTable(_Strict):
    pools: dict[str, Pool] = Field(min_length=1)
    endpoints: dict[Endpoint, str]

    def pool_of(self, endpoint: str) -> Pool:
        return self.pools[self.pool_name(endpoint)]

    def pool_name(self, endpoint: str) -> str:
        """The segment worker runs yolo's and whisper's models: yolo's pool unless named."""
        return self.endpoints.get(endpoint) or self.endpoints["yolo"]


class EndpointProfile(_Strict):
    gpu: str
    unit: Literal["image", "audio_s", "caption"]
    seconds_per_unit: float = Field(ge=0)
    seconds_per_request: float = Field(ge=0)
    cold_start_s: float = Field(ge=0)
    idle_s: float = Field(ge=0)
    cold_starts_per_run: int = Field(ge=0)
    provenance: Literal["published", "measured"] = Field(
        "published", description="published: someone else's benchmark, scaled; measured: ours."
    )
    source: str = Field(min_length=1)
    basis: str = ""
    date: str = Field(min_length=1)

    _date_as_text = field_validator("date", mode="before")(_iso_date)


class VlmProfile(EndpointProfile):
    seconds_per_summary: float = Field(ge=0)


class WhisperProfile(EndpointProfile):
    diarize_seconds_per_unit: float = Field(
        0.0, ge=0, description="GPU seconds per audio second that --speakers adds (diarization on the same worker).")


class Measurement(_Strict):
    """How a measured profile was made: the tool, the machine, the libraries, every figure."""

    tool: str
    gpu: str
    date: str
    command: str = ""
    versions: dict[str, str] = Field(default_factory=dict)
    figures: list[dict[str, Any]] = Field(default_factory=list)

    _date_as_text = field_validator("date", mode="before")(_iso_date)


class SegmentProfile(_Strict):
    """The segment path's figures besides the models' (which are yolo's and whisper's): decode
    rates on the client and on a worker, the client's hashing, the per-segment overheads,
    a segment worker's cold start, and the bytes the single-client path uploads."""

    client_pixels_per_s: float = Field(gt=0, description="Video pixels (width x height x frames) the client's one pass decodes and samples per second.")
    client_audio_x: float = Field(gt=0, description="Seconds of audio the client decodes per second.")
    worker_pixels_per_s: float = Field(gt=0, description="The same, on one segment worker's CPU threads.")
    worker_audio_x: float = Field(gt=0)
    hash_bytes_per_s: float = Field(gt=0, description="sha256 of the file on the client (the upload's key).")
    presign_s: float = Field(ge=0, description="Client seconds to sign one segment's URL.")
    probe_s: float = Field(ge=0, description="Client seconds to probe the media over its URL (metadata, keyframe index).")
    queue_s: float = Field(ge=0, description="Submit to start of a segment job on a warm worker.")
    seconds_per_segment: float = Field(ge=0, description="A worker's fixed time per segment: fetch the job, open the URL, seek.")
    cold_start_s: float = Field(ge=0)
    idle_s: float = Field(ge=0)
    detect_jpeg_bytes: float = Field(gt=0, description="One detection frame as the single-client path sends it (base64 included).")
    audio_bytes_per_s: float = Field(gt=0, description="Audio as the single-client path sends it (16 kHz WAV, base64).")
    assumed_bitrate_bps: float = Field(gt=0, description="--duration: the file's bitrate, for its size.")
    assumed_width: int = Field(gt=0)
    assumed_height: int = Field(gt=0)
    provenance: Literal["published", "measured"] = "published"
    source: str = Field(min_length=1)
    basis: str = ""
    date: str = Field(min_length=1)

    _date_as_text = field_validator("date", mode="before")(_iso_date)


class TimeProfile(_Strict):
    yolo: EndpointProfile
    whisper: WhisperProfile
    vlm: VlmProfile
    segment: SegmentProfile | None = Field(None, description="The segment path; absent: the shipped profile's.")
    measurement: Measurement | None = None

    def of(self, endpoint: str) -> EndpointProfile:
        return getattr(self, endpoint)


def parse_prices(text: str, where: str) -> PriceTable:
    """The price table in `text` (YAML); ConfigError naming `where` and the bad key."""
    table = _parse(PriceTable, text, where)
    for endpoint in ENDPOINTS:
        if endpoint not in table.endpoints:
            raise ConfigError(f"{where}: key 'endpoints.{endpoint}': missing; name the pool it runs on")
    for endpoint in table.endpoints:  # the three, and segment when named
        if table.endpoints[endpoint] not in table.pools:
            raise ConfigError(
                f"{where}: key 'endpoints.{endpoint}': pool {table.endpoints[endpoint]!r} "
                f"is not listed under 'pools' (known: {', '.join(table.pools)})"
            )
    return table


def parse_profile(text: str, where: str) -> TimeProfile:
    """The time profile in `text` (YAML); ConfigError naming `where` and the bad key."""
    profile = _parse(TimeProfile, text, where)
    for endpoint, unit in UNITS.items():
        if profile.of(endpoint).unit != unit:
            raise ConfigError(f"{where}: key '{endpoint}.unit': must be {unit!r} for {endpoint}")
    return profile


_Model = TypeVar("_Model", bound=BaseModel)


def _parse(model: type[_Model], text: str, where: str) -> _Model:
    data = yaml_mapping(text, where)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: key '{key}': unknown key") from None
        if err["type"] == "missing":
            raise ConfigError(f"{where}: key '{key}': missing") from None
        got = repr(err.get("input"))
        got = got if len(got) <= 60 else got[:57] + "..."
        raise ConfigError(f"{where}: key '{key}': {err['msg']} (got {got})") from None


# -- the files --------------------------------------------------------------------------


def shipped(name: str) -> Path:
    """configs/<name> in a checkout, vidagent/<name> in an installed wheel."""
    return next((d / name for d in _DATA_DIRS if (d / name).exists()), _DATA_DIRS[-1] / name)


def read_table(path: Path, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder; give the {what} file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what} file ({exc.strerror})") from None


def load_prices(path: Path | None = None) -> PriceTable:
    path = Path(path) if path else shipped("prices.yaml")
    return parse_prices(read_table(path, "price table"), str(path))


def load_profile(path: Path | None = None) -> TimeProfile:
    path = Path(path) if path else shipped("profile.yaml")
    return parse_profile(read_table(path, "time profile"), str(path))


def load_pricing(settings: Settings) -> tuple[PriceTable, TimeProfile]:
    """The price table and time profile a run uses: the settings' files or the shipped ones."""
    return load_prices(settings.prices_file), load_profile(settings.profile_file)


# -- measured usage in dollars ----------------------------------------------------------


def dollars_for(usage: Mapping[str, EndpointUsage], prices: PriceTable) -> dict[str, float]:
    """Measured `execution_s` per endpoint at its pool's flex price.

    An upper bound of the work's share of the bill where a worker holds several jobs at
    once (vidagent's YOLO and Whisper shims take 16 and 4, vLLM up to 32): each job's
    executionTime runs while the others wait, and the worker bills once. Cold starts and
    idle timeouts are not in executionTime and are not counted. Endpoints the price table
    does not map are left out."""
    return {
        endpoint: round(used.execution_s * prices.pool_of(endpoint).flex_usd_per_s, 6)
        for endpoint, used in usage.items()
        if endpoint in prices.endpoints
    }
