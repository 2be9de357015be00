"""Array module selection: numpy everywhere, cupy on a GPU worker."""

from __future__ import annotations

from types import ModuleType

import numpy

INSTALL_HINT = "pip install 'hisci[gpu]' (cupy) on a machine with an NVIDIA GPU and CUDA"


def gpu_available() -> bool:
    """True when cupy imports and sees at least one CUDA device."""
    try:
        import cupy
    except ImportError:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - a broken driver means "no GPU" here
        return False


def array_module(prefer_gpu: bool = False) -> ModuleType:
    """cupy when asked for and available, else numpy."""
    if prefer_gpu and gpu_available():
        import cupy

        return cupy
    return numpy
