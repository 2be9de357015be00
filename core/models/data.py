"""data.json: Hiplot's parameters, defaults and example data."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class DataSpec(BaseModel):
    """Hiplot data.json (``module``, ``tool``, ``params``, ``exampleData``)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    module: str | dict[str, Any] = ""
    tool: str
    params: dict[str, Any]
    exampleData: dict[str, Any] | list[dict[str, Any]] | None = None
    files: list[Any] = Field(default_factory=list)

    @property
    def config(self) -> dict[str, Any]:
        return self.params.get("config", {})

    @property
    def textarea(self) -> dict[str, str]:
        return self.params.get("textarea", {}) or {}

    def examples(self) -> list[dict[str, Any]]:
        """exampleData as a list (Hiplot allows one object or a list)."""
        if self.exampleData is None:
            return []
        if isinstance(self.exampleData, list):
            return list(self.exampleData)
        return [self.exampleData]

    @property
    def module_name(self) -> str:
        return self.module if isinstance(self.module, str) else ""
