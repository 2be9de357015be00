"""ui.json: Hiplot's form widgets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Every widget type hisci draws; the same list is the enum in schemas/ui.schema.json.
WIDGET_TYPES: tuple[str, ...] = (
    "slider",
    "range-slider",
    "switch",
    "select",
    "autocomplete",
    "combobox",
    "text-field",
    "color-picker",
    "hiplot-textarea",
    "cloud-file",
    "codemirror",
)

#: Widgets whose value is one of (or a list of) ``items``.
CHOICE_TYPES = ("select", "autocomplete", "combobox")
#: Widgets that stand for an input file or table rather than a value.
INPUT_TYPES = ("hiplot-textarea", "cloud-file", "codemirror")
#: Conditional attributes evaluated by the expression evaluator.
EXPRESSION_KEYS = ("if_func", "items_func", "class_func", "max_func")


class Widget(BaseModel):
    """One form widget; unknown (Vuetify) properties are kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    type: str
    label: str | dict[str, str] = ""
    css_class: str = Field("", alias="class")
    required: bool = False
    multiple: bool = False
    items: list[Any] | None = None
    min: int | float | None = None
    max: int | float | None = None
    step: int | float | None = None
    exts: list[str] = Field(default_factory=list)

    def prop(self, name: str, default: Any = None) -> Any:
        """A widget property by its ui.json name (including extra Vuetify ones)."""
        if name == "class":
            return self.css_class
        extra = self.model_extra or {}
        return extra.get(name, getattr(self, name, default) if name in type(self).model_fields else default)


class DataArgItem(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    label: str | dict[str, str] = ""
    required: bool = False
    multiple: bool = False
    independent: bool = False
    blackItems: list[str] = Field(default_factory=list)
    css_class: str = Field("", alias="class")


class UiSpec(BaseModel):
    """Hiplot ui.json sections: ``data``, ``dataArg``, ``extra``, ``general``."""

    model_config = ConfigDict(extra="allow", frozen=True)

    data: dict[str, Widget] = Field(default_factory=dict)
    dataArg: dict[str, list[DataArgItem]] = Field(default_factory=dict)
    extra: dict[str, Widget] = Field(default_factory=dict)
    general: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> UiSpec:
        raw = dict(raw)
        if raw.get("dataArg") == []:
            raw["dataArg"] = {}
        return cls.model_validate(raw)
