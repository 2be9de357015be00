"""Live jobs: sources that yield items while the experiment runs (``hisci.live``).

A plugin with ``runtime.live: true`` and ``run_live(ctx)`` reads ``ctx.live_items(name)``
and calls ``ctx.publish(name, data)`` per item; the platform waits, stops, checkpoints and
counts. Sources: a folder (new complete files), ZeroMQ (PULL/SUB) and a Bluesky 0MQ proxy.
"""

from .items import LiveItem
from .publish import EVENTS_FILE, EventLog, read_events
from .session import LiveSession
from .spec import BlueskySpec, LiveSpec, live_spec_for, parse_live, parse_pairs, split_live

__all__ = ["BlueskySpec", "EVENTS_FILE", "EventLog", "LiveItem", "LiveSession", "LiveSpec", "live_spec_for", "parse_live",
           "parse_pairs", "read_events", "split_live"]
