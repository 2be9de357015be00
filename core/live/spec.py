"""The "live" part of a request: which inputs come from which source, and when to stop."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

COMPLETION = ("auto", "settle", "marker", "swmr")
JOURNAL = ("always", "behind")
ZMQ_KINDS = ("pull", "sub")


@dataclass
class BlueskySpec:
    """A Bluesky 0MQ proxy subscription turned into items.

    Attributes
    ----------
    address : the proxy's out address (``tcp://host:port``).
    mode : ``event`` (one item per event) or ``run`` (one item per run, on its stop document,
        holding every mapped key as an array over the run's events).
    keys : plugin input (or item field) -> Bluesky data key.
    filters : start-document key -> accepted value or list of values (plan_name, sample, scan_id).
    prefix : the publisher's prefix (bytes as text), '' for none.
    serializer : ``pickle`` (bluesky's default) or ``json``.
    """

    address: str
    mode: str = "run"
    keys: dict[str, str] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    prefix: str = ""
    serializer: str = "pickle"


@dataclass
class LiveSpec:
    """Validated live settings of one run (``request["live"]``)."""

    watch: dict[str, str] = field(default_factory=dict)
    zmq: dict[str, str] = field(default_factory=dict)
    bluesky: dict[str, BlueskySpec] = field(default_factory=dict)
    until: int | None = None
    idle: float | None = None
    settle: float = 0.5
    pattern: str = "*"
    completion: str = "auto"
    poll: float = 0.1
    memory_mb: float = 256.0
    spool_mb: float = 4096.0
    zmq_end: str = ""
    journal: str = "always"

    @property
    def names(self) -> tuple[str, ...]:
        return (*self.watch, *self.zmq, *self.bluesky)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "bluesky"}
        out["bluesky"] = {k: dict(v.__dict__) for k, v in self.bluesky.items()}
        return out


def zmq_endpoint(address: str) -> tuple[str, bool, str]:
    """``[pull+|sub+][bind:]URL`` -> (socket kind, bind?, URL); PULL and connect by default."""
    kind = "pull"
    for candidate in ZMQ_KINDS:
        if address.startswith(candidate + "+"):
            kind, address = candidate, address[len(candidate) + 1:]
    bind = address.startswith("bind:")
    url = address.removeprefix("bind:")
    if "://" not in url or url.split("://")[0] not in ("tcp", "ipc", "inproc"):
        raise ValueError(address)
    return kind, bind, url


def _error(message: str, pointer: str, given: Any = None, hint: str = "") -> InputError:
    return InputError(message, pointer=f"/live{pointer}", given=given, hint=hint)


def split_live(request: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``request`` without its ``live`` part, and that part (None when absent)."""
    request = dict(request or {})
    if "params" in request and isinstance(request["params"], dict) and "live" in request["params"]:
        request["params"] = dict(request["params"])
        return request, request["params"].pop("live")
    return request, request.pop("live", None)


def parse_live(raw: dict[str, Any] | LiveSpec, inputs: tuple[str, ...] = ()) -> LiveSpec:
    """Check ``raw`` (the request's ``live`` object) and return a LiveSpec.

    Parameters
    ----------
    inputs : the plugin's input ids; every source name must be one of them.

    Raises
    ------
    InputError naming the field (``/live/...``), what was given and what is allowed.
    """
    if isinstance(raw, LiveSpec):
        return raw
    if not isinstance(raw, dict):
        raise _error("the live part of a request must be an object", "", raw,
                     'e.g. {"watch": {"image": "/data/run42"}, "idle": 60}')
    known = set(LiveSpec.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _error(f"unknown live setting {unknown[0]!r}; known: {', '.join(sorted(known))}",
                     f"/{unknown[0]}", unknown[0])
    spec = LiveSpec()
    for section in ("watch", "zmq"):
        value = raw.get(section) or {}
        if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
            raise _error(f"live.{section} must map an input name to a "
                         f"{'folder' if section == 'watch' else 'ZeroMQ address'}", f"/{section}", value)
        setattr(spec, section, dict(value))
    for name, address in spec.zmq.items():
        try:
            zmq_endpoint(address)
        except ValueError:
            raise _error(f"live.zmq.{name}: {address!r} is not a ZeroMQ address", f"/zmq/{name}", address,
                         "tcp://HOST:PORT (PULL, connects), sub+tcp://HOST:PORT, pull+bind:tcp://*:PORT"
                         ) from None
    for name, value in (raw.get("bluesky") or {}).items():
        if isinstance(value, str):
            value = {"address": value}
        if not isinstance(value, dict) or "address" not in value:
            raise _error(f"live.bluesky.{name} needs an address (the Bluesky 0MQ proxy's out port)",
                         f"/bluesky/{name}", value, '{"address": "tcp://HOST:PORT", "mode": "run"}')
        extra = sorted(set(value) - set(BlueskySpec.__dataclass_fields__))
        if extra:
            raise _error(f"live.bluesky.{name}: unknown setting {extra[0]!r}", f"/bluesky/{name}/{extra[0]}",
                         extra[0], f"known: {', '.join(BlueskySpec.__dataclass_fields__)}")
        bs = BlueskySpec(**value)
        if bs.mode not in ("event", "run"):
            raise _error(f"live.bluesky.{name}.mode must be 'event' or 'run'", f"/bluesky/{name}/mode", bs.mode)
        if bs.serializer not in ("pickle", "json"):
            raise _error(f"live.bluesky.{name}.serializer must be 'pickle' or 'json'",
                         f"/bluesky/{name}/serializer", bs.serializer)
        spec.bluesky[name] = bs
    for key, kind, minimum in (("until", int, 1), ("idle", float, 0), ("settle", float, 0), ("poll", float, 0.001),
                               ("memory_mb", float, 0), ("spool_mb", float, 0)):
        if raw.get(key) is None:
            continue
        try:
            value = kind(raw[key])
        except (TypeError, ValueError):
            raise _error(f"live.{key} must be a number", f"/{key}", raw[key]) from None
        if value < minimum or (key in ("idle", "settle") and value < 0):
            raise _error(f"live.{key} must be >= {minimum}", f"/{key}", raw[key])
        setattr(spec, key, value)
    for key in ("pattern", "zmq_end"):
        if raw.get(key) is not None:
            setattr(spec, key, str(raw[key]))
    if raw.get("journal") is not None:
        if raw["journal"] not in JOURNAL:
            raise _error("unknown live.journal", "/journal", raw["journal"],
                         "always (every ZeroMQ message on disk before it is processed) or behind (only the "
                         "backlog over memory_mb)")
        spec.journal = raw["journal"]
    if raw.get("completion") is not None:
        if raw["completion"] not in COMPLETION:
            raise _error("unknown live.completion", "/completion", raw["completion"], f"one of {COMPLETION}")
        spec.completion = raw["completion"]
    if not spec.names:
        raise _error("a live run needs a source", "", raw,
                     "live.watch {NAME: FOLDER}, live.zmq {NAME: tcp://HOST:PORT} or live.bluesky {NAME: tcp://HOST:PORT}")
    for name in spec.names:
        if inputs and name not in inputs:
            raise _error(f"live source {name!r} is not an input of this plugin; inputs: {', '.join(inputs)}",
                         f"/{name}", name)
    return spec


def live_spec_for(plugin: Any, raw: dict[str, Any] | LiveSpec | None) -> LiveSpec | None:
    """The checked live settings for ``plugin`` (None when ``raw`` is empty); refuses a
    plugin without ``runtime.live``."""
    if not raw:
        return None
    if not (plugin.runtime and plugin.runtime.live):
        raise InputError(f"plugin '{plugin.id}' has no live mode (runtime.live is not set)", pointer="/live",
                         hint="run it as a normal job on finished files")
    return parse_live(raw, tuple(plugin.ui.data))


def parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    """``NAME=VALUE`` pairs from a command line (a VALUE starting with '{' is JSON)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise InputError(f"{option} {pair!r} is not NAME=VALUE", hint=f"{option} image=/data/run42")
        if value.lstrip().startswith("{"):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise InputError(f"{option} {name}: invalid JSON: {exc.msg}", given=value) from None
        out[name] = value
    return out
