"""Job JSON (vidagent/wire.py) accepts what the standard json module accepts."""

import enum
import json

import numpy as np
import pytest

from vidagent import wire


class Colour(str, enum.Enum):
    RED = "red"


def test_values_json_accepts_round_trip_the_same():
    value = {"conf": np.float32(0.5), "n": np.int64(3), 7: "seven", "c": Colour.RED, "xs": [1.5, None, True]}
    assert wire.loads(wire.dumps(value)) == json.loads(json.dumps(value, default=float))


def test_canonical_ignores_key_order():
    assert wire.canonical({"b": 1, "a": {"y": 2, "x": 3}}) == wire.canonical({"a": {"x": 3, "y": 2}, "b": 1})
    assert wire.canonical({"a": 1}) != wire.canonical({"a": 2})


def test_what_json_refuses_is_refused():
    with pytest.raises(TypeError):
        wire.dumps({"when": object()})
