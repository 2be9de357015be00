"""Typed views of the three plugin JSON files (meta, data, ui)."""

from .data import DataSpec
from .meta import InputType, Meta, Output, Runtime
from .ui import WIDGET_TYPES, UiSpec, Widget

__all__ = ["DataSpec", "InputType", "Meta", "Output", "Runtime", "UiSpec", "Widget", "WIDGET_TYPES"]
