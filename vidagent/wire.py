"""JSON on the job path, where each job carries megabytes of base64 (frames, audio).

orjson encodes a 1 MB detection job in ~0.1 ms where the standard library takes ~4 ms,
holding the GIL all the while, and a 10-minute video makes ~200 such jobs on each side of
the wire (docs/decisions.md). Everything else keeps the standard `json` module.
"""

from __future__ import annotations

from typing import Any

import orjson

# Like json.dumps: {1: x} becomes {"1": x}, and numpy numbers (model outputs) are numbers.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY

JSONDecodeError = orjson.JSONDecodeError  # a ValueError


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_plain, option=_OPTIONS)


def canonical(value: Any) -> bytes:
    """One byte string per value whatever the key order: for hashing."""
    return orjson.dumps(value, default=_plain, option=_OPTIONS | orjson.OPT_SORT_KEYS)


def _plain(value: Any) -> Any:
    # What json.dumps accepts and orjson does not: subclasses of float, int, str.
    for kind in (float, int, str):
        if isinstance(value, kind):
            return kind(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
