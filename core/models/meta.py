"""meta.json: Hiplot's catalogue card plus the hisci ``runtime`` block."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

I18n = str | dict[str, str]


def localize(text: I18n | None, lang: str = "en") -> str:
    """Pick one language from a Hiplot i18n value (``{"en", "zh_cn"}`` or a plain string).

    Front-end message keys (``messages.basic.heatmap.countData``) fall back to their last
    segment, since Hiplot's locale bundle is not public.
    """
    if text is None:
        return ""
    if isinstance(text, dict):
        aliases = {"zh_cn": ("zh_cn", "zh_ch", "zh"), "en": ("en",)}.get(lang, (lang,))
        for key in (*aliases, "en", "zh_cn", "zh_ch"):
            if text.get(key):
                return text[key]
        return next((v for v in text.values() if v), "")
    if text.startswith("messages."):
        return text.rsplit(".", 1)[-1].replace("_", " ")
    return text


class Parallel(BaseModel):
    """``runtime.parallel``: how a job splits into chunks (``plan``/``run_chunk``/``merge``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    over: Literal["rows", "frames", "batches", "fragments", "spectra"]
    max_chunks: int = Field(default=64, ge=1)
    min_chunk: int = Field(default=1, ge=1)


class Output(BaseModel):
    """One named output of a plugin (``runtime.outputs``): a glob in its output folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    glob: str
    type: str | None = None
    extension: str | None = None
    multiple: bool = False
    optional: bool = False
    description: I18n = ""

    @property
    def ext(self) -> str:
        """The file extension (no dot, lower case); from the glob when not given."""
        if self.extension is not None:
            return self.extension.lower().lstrip(".")
        name = self.glob.rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[-1].lower() if "." in name else ""


class InputType(BaseModel):
    """The content type a file input accepts (``runtime.inputs``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    description: I18n = ""


class Runtime(BaseModel):
    """How hisci runs a plugin (absent: the plugin can be listed and drawn, not run).

    ``entry`` is ``module:function``; a workflow folder (workflow.json) has none.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry: str | None = None
    version: str = "0.0.0"
    queue: Literal["cpu", "gpu"] = "cpu"
    gpu: Literal["none", "optional", "required"] = "none"
    timeout: float = 3600
    requires: tuple[str, ...] = ()
    memory_gb: float | str | None = None
    gpu_memory_gb: float | str | None = None
    retries: int = 0
    #: ``run_live(ctx)`` exists and the plugin accepts live sources (``hisci.live``).
    live: bool = False
    #: A live run without a new item for this long stops (``--idle`` overrides it).
    idle_timeout: float = 600
    outputs: dict[str, Output] = Field(default_factory=dict)
    inputs: dict[str, InputType] = Field(default_factory=dict)
    parallel: Parallel | None = None


class CardMeta(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    score: float | None = None
    author: str = ""
    email: str = ""
    issues: str = ""
    citation: str = ""
    version: str = ""
    releaseDate: str = ""
    updateDate: str = ""


class Meta(BaseModel):
    """The catalogue card of a plugin (Hiplot meta.json)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: I18n
    intro: I18n
    alias: list[str] | str = Field(default_factory=list)
    src: str = ""
    href: str = ""
    tag: list[str] = Field(default_factory=list)
    meta: CardMeta = Field(default_factory=CardMeta)
    runtime: Runtime | None = None

    def title(self, lang: str = "en") -> str:
        return localize(self.name, lang)

    def description(self, lang: str = "en") -> str:
        return localize(self.intro, lang)

    def card(self, lang: str = "en") -> dict[str, Any]:
        return {
            "name": self.title(lang),
            "intro": self.description(lang),
            "tags": [t for t in self.tag if t.lower() not in ("vue", "shiny")],
            "author": self.meta.author,
            "citation": self.meta.citation,
            "version": self.runtime.version if self.runtime else self.meta.version,
            "src": self.src,
        }
