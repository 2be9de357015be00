"""Saved plotly figures: read them back with their arrays decoded.

plotly >= 6 stores numeric arrays in figure JSON as ``{"dtype": "f8", "bdata": "<base64>"}``;
``load_figure`` turns those back into numpy arrays so figures can be compared by data.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np


def decode_arrays(node: Any) -> Any:
    """Recursively replace plotly's typed-array objects by numpy arrays."""
    if isinstance(node, dict):
        if "bdata" in node and "dtype" in node:
            array = np.frombuffer(base64.b64decode(node["bdata"]), dtype=np.dtype(node["dtype"]))
            shape = node.get("shape")
            if shape:
                dims = [int(s) for s in str(shape).split(",")] if isinstance(shape, str) else shape
                array = array.reshape(dims)
            return array
        return {key: decode_arrays(value) for key, value in node.items()}
    if isinstance(node, list):
        return [decode_arrays(value) for value in node]
    return node


def load_figure(path: Path | str) -> dict[str, Any]:
    """A saved figure (``ctx.save_figure``) as a dict with numpy arrays for its data."""
    return decode_arrays(json.loads(Path(path).read_text("utf-8")))
