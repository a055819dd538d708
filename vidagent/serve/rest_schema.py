"""The request bodies of RunPod's REST API v2 for templates and serverless endpoints, as its
OpenAPI document (https://api.runpod.io/v2/openapi.json) describes them, and a checker.

Written from the document's facts (field names, JSON types, bounds, enums, patterns,
required fields; every create and update body refuses unknown fields), not generated from
it. `problems(body, shape)` lists what RunPod's validator would answer with a 422, in its
style: `$.workers: additional properties 'minimum' not allowed`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Str:
    min_len: int = 0
    pattern: str | None = None
    enum: tuple[str, ...] | None = None
    nullable: bool = False


@dataclass(frozen=True)
class Int:
    min: int | None = None
    max: int | None = None


@dataclass(frozen=True)
class Num:
    min: float | None = None


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Arr:
    item: Any
    min_items: int = 0
    unique: bool = False


@dataclass(frozen=True)
class Map:
    """An object whose keys are free and whose values share one shape (env)."""

    value: Any


@dataclass(frozen=True)
class Obj:
    """A closed object: unknown properties are refused."""

    fields: dict[str, Any]
    required: frozenset[str] = frozenset()
    depends: dict[str, str] = field(default_factory=dict)  # property → the property it requires


@dataclass(frozen=True)
class OneOf:
    """A union told apart by one property (`scaling.type`)."""

    by: str
    variants: dict[str, Obj]


def problems(value: Any, shape: Any, path: str = "$") -> list[str]:
    found: list[str] = []
    _check(value, shape, path, found)
    return found


def _check(value: Any, shape: Any, path: str, found: list[str]) -> None:
    if isinstance(shape, Str):
        if value is None and shape.nullable:
            return
        if not isinstance(value, str):
            found.append(f"{path}: got {json_type(value)}, want string")
        elif len(value) < shape.min_len:
            found.append(f"{path}: length must be >= {shape.min_len}, but got {len(value)}")
        elif shape.enum is not None and value not in shape.enum:
            found.append(f"{path}: value must be one of {', '.join(repr(e) for e in shape.enum)}")
        elif shape.pattern is not None and not re.search(shape.pattern, value):
            found.append(f"{path}: {value!r} does not match pattern {shape.pattern!r}")
    elif isinstance(shape, (Int, Num)):
        numeric = (int,) if isinstance(shape, Int) else (int, float)
        if not isinstance(value, numeric) or isinstance(value, bool):  # JSON true is not a number
            found.append(f"{path}: got {json_type(value)}, want {'integer' if isinstance(shape, Int) else 'number'}")
        elif shape.min is not None and value < shape.min:
            found.append(f"{path}: must be >= {shape.min} but found {value}")
        elif isinstance(shape, Int) and shape.max is not None and value > shape.max:
            found.append(f"{path}: must be <= {shape.max} but found {value}")
    elif isinstance(shape, Bool):
        if not isinstance(value, bool):
            found.append(f"{path}: got {json_type(value)}, want boolean")
    elif isinstance(shape, Arr):
        if not isinstance(value, list):
            found.append(f"{path}: got {json_type(value)}, want array")
            return
        if len(value) < shape.min_items:
            found.append(f"{path}: minimum {shape.min_items} items required, but found {len(value)} items")
        if shape.unique and len({repr(v) for v in value}) != len(value):
            found.append(f"{path}: items are not unique")
        for i, item in enumerate(value):
            _check(item, shape.item, f"{path}[{i}]", found)
    elif isinstance(shape, Map):
        if not isinstance(value, dict):
            found.append(f"{path}: got {json_type(value)}, want object")
            return
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}", found)
    elif isinstance(shape, Obj):
        _check_object(value, shape, path, found)
    elif isinstance(shape, OneOf):
        if not isinstance(value, dict):
            found.append(f"{path}: got {json_type(value)}, want object")
        elif shape.by not in value:
            found.append(f"{path}: missing property {shape.by!r}")
        elif value[shape.by] not in shape.variants:
            found.append(f"{path}.{shape.by}: value must be one of {', '.join(repr(v) for v in shape.variants)}")
        else:
            _check_object(value, shape.variants[value[shape.by]], path, found)
    else:  # pragma: no cover - a shape this module does not know is a bug here
        raise TypeError(shape)


def _check_object(value: Any, shape: Obj, path: str, found: list[str]) -> None:
    if not isinstance(value, dict):
        found.append(f"{path}: got {json_type(value)}, want object")
        return
    for name in sorted(shape.required - value.keys()):
        found.append(f"{path}: missing property {name!r}")
    extra = [key for key in value if key not in shape.fields]
    if extra:
        found.append(f"{path}: additional properties {', '.join(repr(k) for k in extra)} not allowed")
    for name, needs in shape.depends.items():
        if name in value and needs not in value:
            found.append(f"{path}: property {needs!r} is required when {name!r} is present")
    for key, item in value.items():
        if key in shape.fields:
            _check(item, shape.fields[key], f"{path}.{key}", found)


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


# -- the bodies ------------------------------------------------------------------------------

CUDA_VERSION = Str(pattern=r"^\d+\.\d+$")
# ContainerConfig: what templates, pods and serverless endpoints share.
CONTAINER = {"args": Str(), "disk": Int(min=1), "env": Map(Str()), "image": Str(), "ports": Arr(Str()),
             "registry": Str(nullable=True)}
CONTAINER_FIELDS = tuple(CONTAINER)
TEMPLATE_MOUNTS = Obj({"persistent": Obj({"size": Int(min=10), "path": Str()}, frozenset({"size", "path"}))})
_TEMPLATE = {**CONTAINER, "name": Str(min_len=1), "allowedCudaVersions": Arr(CUDA_VERSION),
             "category": Str(enum=("CPU", "NVIDIA", "AMD")), "mounts": TEMPLATE_MOUNTS, "public": Bool(),
             "serverless": Bool(), "startJupyter": Bool(), "startSsh": Bool()}
CREATE_TEMPLATE = Obj(_TEMPLATE, frozenset({"name", "image"}))
UPDATE_TEMPLATE = Obj(_TEMPLATE)

_GPU = {"pools": Arr(Str(), min_items=1), "excludedTypes": Arr(Str(pattern=r"^\s*[^-\s]"), unique=True),
        "count": Int(min=1), "allowedCudaVersions": Arr(CUDA_VERSION)}
CREATE_GPU = Obj({**_GPU, "minCudaVersion": CUDA_VERSION}, frozenset({"pools"}))
# In a PATCH "" clears the floor, and exclusions come only with the pools they narrow.
UPDATE_GPU = Obj({**_GPU, "minCudaVersion": Str(pattern=r"^$|^\d+\.\d+$")}, depends={"excludedTypes": "pools"})
CPU = Arr(Obj({"id": Str(min_len=1), "vcpuCount": Int(min=2)}, frozenset({"id", "vcpuCount"})), min_items=1, unique=True)
WORKERS = Obj({"min": Int(min=0), "max": Int(min=0), "idleTimeout": Int(min=1, max=3600)})
SCALING = OneOf("type", {
    "QUEUE_DELAY": Obj({"type": Str(), "queueDelay": Num(min=0.5)}, frozenset({"type", "queueDelay"})),
    "REQUEST_COUNT": Obj({"type": Str(), "requestCount": Int(min=1)}, frozenset({"type", "requestCount"})),
})
ENDPOINT_TYPES = ("QUEUE", "LOAD_BALANCER")
FLASHBOOT = Str(enum=("OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"))
_ENDPOINT = {**CONTAINER, "name": Str(min_len=1), "cpu": CPU, "dataCenterIds": Arr(Str()), "flashboot": FLASHBOOT,
             "networkVolumes": Arr(Str()), "scaling": SCALING, "timeout": Int(), "workers": WORKERS}
CREATE_ENDPOINT = Obj({**_ENDPOINT, "gpu": CREATE_GPU, "type": Str(enum=ENDPOINT_TYPES), "templateId": Str(min_len=1)},
                      frozenset({"name", "type", "scaling"}))
# No `type`: the routing model is fixed at creation.
UPDATE_ENDPOINT = Obj({**_ENDPOINT, "gpu": UPDATE_GPU, "templateId": Str()})

# Serverless GPU pools and the GPU type ids in each (GET /v2/catalog/gpus gives each type's
# `pool`): docs.runpod.io references/gpu-types ("GPU pools") and flash/configuration/gpu-types
# for ADA_32_PRO, BLACKWELL_96 and BLACKWELL_180. `excludedTypes` must name types of the pools chosen.
GPU_POOLS: dict[str, frozenset[str]] = {
    "AMPERE_16": frozenset({"NVIDIA RTX A4000", "NVIDIA RTX A4500", "NVIDIA RTX 4000 Ada Generation",
                            "NVIDIA RTX 2000 Ada Generation"}),
    "AMPERE_24": frozenset({"NVIDIA L4", "NVIDIA RTX A5000", "NVIDIA GeForce RTX 3090"}),
    "ADA_24": frozenset({"NVIDIA GeForce RTX 4090"}),
    "ADA_32_PRO": frozenset({"NVIDIA GeForce RTX 5090"}),
    "AMPERE_48": frozenset({"NVIDIA RTX A6000", "NVIDIA A40"}),
    "ADA_48_PRO": frozenset({"NVIDIA L40", "NVIDIA L40S", "NVIDIA RTX 6000 Ada Generation"}),
    "AMPERE_80": frozenset({"NVIDIA A100 80GB PCIe", "NVIDIA A100-SXM4-80GB"}),
    "ADA_80_PRO": frozenset({"NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3"}),
    "BLACKWELL_96": frozenset({"NVIDIA RTX PRO 6000 Blackwell Server Edition",
                               "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
                               "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition"}),
    "HOPPER_141": frozenset({"NVIDIA H200"}),
    "BLACKWELL_180": frozenset({"NVIDIA B200"}),
}
