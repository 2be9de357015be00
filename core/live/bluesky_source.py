"""Bluesky source: documents from a Bluesky 0MQ proxy, validated with event-model, turned
into items (one per event, or one per run on its stop document).

This is the equivalent of ``bluesky.callbacks.zmq.RemoteDispatcher`` (same wire format:
``PREFIX b' ' NAME b' ' SERIALIZED``, same SUB subscription to the prefix) in a plain
thread, so it runs inside a worker without an asyncio loop.
"""

from __future__ import annotations

import json
import pickle
import time
from typing import Any

import numpy as np

from .items import LiveItem
from .source import Source
from .spec import BlueskySpec

#: Start-document fields copied into ``item.meta``.
START_FIELDS = ("uid", "scan_id", "plan_name", "sample", "time", "motors", "detectors")


def _validators():
    try:
        import event_model
    except ImportError:  # pragma: no cover - the live extra is missing
        from ..errors import InputError

        raise InputError("Bluesky sources need event-model and pyzmq", hint="pip install 'hisci[live]'") from None
    return event_model


def matches(start: dict[str, Any], filters: dict[str, Any]) -> bool:
    """True when every filter key of the start document has an accepted value."""
    for key, accepted in filters.items():
        value = start.get(key)
        options = accepted if isinstance(accepted, (list, tuple, set)) else [accepted]
        if value not in options:
            return False
    return True


class BlueskySource(Source):
    """Subscribes to a Bluesky 0MQ proxy and yields items.

    ``mode="event"``: one item per event of an accepted run, ``data`` = {name: value of the
    mapped data key}. ``mode="run"``: one item per accepted run when its stop document
    arrives, ``data`` = {name: numpy array of the key over the run's events (seq_num order)}.
    Invalid documents are counted (``rejected``) and logged, never fatal.
    """

    def __init__(self, name: str, spec: BlueskySpec, *, next_seq: int = 1, logger=None) -> None:
        super().__init__(name, next_seq, logger)
        self.event_model = _validators()
        import zmq

        self.spec = spec
        self._ctx = zmq.Context.instance()
        self._sock = self._ctx.socket(zmq.SUB)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.SUBSCRIBE, spec.prefix.encode())
        self._sock.connect(spec.address)
        self._poller = zmq.Poller()
        self._poller.register(self._sock, zmq.POLLIN)
        self._runs: dict[str, dict[str, Any]] = {}
        self._descriptors: dict[str, str] = {}
        self.documents: dict[str, int] = {}

    def _decode(self, message: bytes) -> tuple[str, dict[str, Any]]:
        _prefix, name, payload = message.split(b" ", 2)
        loads = pickle.loads if self.spec.serializer == "pickle" else json.loads
        return name.decode(), loads(payload)

    def _produce(self) -> None:
        if not self._poller.poll(100):
            return
        message = self._sock.recv()
        self.counters.add(bytes=len(message))
        try:
            name, doc = self._decode(message)
            kind = self.event_model.DocumentNames[name]
            if kind in self.event_model.schema_validators:
                self.event_model.schema_validators[kind].validate(doc)
        except Exception as exc:  # noqa: BLE001 - a bad document is counted and skipped
            self.counters.add(rejected=1)
            self.log.warning("live.bluesky.%s: rejected a document: %s", self.name, str(exc).splitlines()[0])
            return
        self.documents[name] = self.documents.get(name, 0) + 1
        getattr(self, f"_on_{name}", lambda doc: None)(doc)

    def _on_start(self, doc: dict[str, Any]) -> None:
        if matches(doc, self.spec.filters):
            self._runs[doc["uid"]] = {"start": doc, "events": []}
        else:
            self.log.info("live.bluesky.%s: run %s (scan %s, plan %s) does not match the filters", self.name,
                          doc["uid"][:8], doc.get("scan_id"), doc.get("plan_name"))

    def _on_descriptor(self, doc: dict[str, Any]) -> None:
        if doc["run_start"] in self._runs:
            self._descriptors[doc["uid"]] = doc["run_start"]

    def _on_event(self, doc: dict[str, Any]) -> None:
        run_uid = self._descriptors.get(doc["descriptor"])
        if run_uid is None:
            return
        values = {name: doc["data"][key] for name, key in self._keys(doc).items() if key in doc["data"]}
        run = self._runs[run_uid]
        if self.spec.mode == "event":
            self._emit(values, run["start"], {"seq_num": doc["seq_num"], "event_time": doc["time"]})
        else:
            run["events"].append((doc["seq_num"], values))

    def _on_event_page(self, doc: dict[str, Any]) -> None:
        for event in self.event_model.unpack_event_page(doc):
            self._on_event(event)

    def _on_stop(self, doc: dict[str, Any]) -> None:
        run = self._runs.pop(doc["run_start"], None)
        if run is None:
            return
        self._descriptors = {d: r for d, r in self._descriptors.items() if r != doc["run_start"]}
        if self.spec.mode != "run":
            return
        events = sorted(run["events"], key=lambda e: e[0])
        names = {n for _, values in events for n in values}
        data = {n: np.asarray([values.get(n, np.nan) for _, values in events]) for n in sorted(names)}
        self._emit(data, run["start"], {"exit_status": doc.get("exit_status"), "num_events": len(events)})

    def _keys(self, doc: dict[str, Any]) -> dict[str, str]:
        return self.spec.keys or {key: key for key in doc["data"]}

    def _emit(self, data: dict[str, Any], start: dict[str, Any], extra: dict[str, Any]) -> None:
        meta = {k: start[k] for k in START_FIELDS if k in start} | extra
        self.counters.add(received=1)
        self._push(LiveItem(self._new_seq(), self.name, data=data, meta=meta, arrived=time.time()))

    def close(self) -> None:
        super().close()
        self._sock.close(0)

