"""deeph_tf.jsonutil: the one JSON encoding of records and summaries."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from deeph_tf.jsonutil import json_default, json_text


@pytest.fixture(scope="session", autouse=True)
def quiet_capped_tensorflow():
    """Overrides tests/conftest.py's fixture of the same name: these tests never import TensorFlow."""
    yield


def test_numpy_values_paths_and_nan():
    value = {"a": np.arange(3), "b": np.float32(0.5), "c": np.int64(7), "d": Path("x/y.h5"), "e": math.nan,
             "f": np.array([[1.5, np.nan]]), "g": np.bool_(True)}
    text = json_text(value)
    assert text.endswith("}\n") and "\n \"a\"" in text  # indent 1
    back = json.loads(text)
    assert back["a"] == [0, 1, 2] and back["b"] == 0.5 and back["c"] == 7 and back["d"] == "x/y.h5"
    assert back["g"] is True and type(back["c"]) is int
    assert math.isnan(back["e"]) and back["f"][0][0] == 1.5 and math.isnan(back["f"][0][1])
    assert "NaN" in text


def test_other_types_are_refused():
    with pytest.raises(TypeError, match="not JSON serializable: object"):
        json_default(object())
    with pytest.raises(TypeError):
        json_text({"x": {1, 2}})
