"""A real Bluesky RunEngine with ophyd's simulated hardware publishes to a 0MQ proxy; a live
xas_match job subscribed to the proxy fits each energy scan when its stop document arrives."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hisci import Registry, Settings, run_plugin
from hisci.live import read_events

SERIES = Path(__file__).parents[1] / "plugins" / "xas_match" / "example" / "au_timeseries"
STANDARDS = ["Au_foil", "Au3_Cl_aq", "Au_sulphide"]
LCF = {"mode": "lcf", "standards": STANDARDS, "fit_range": [-49, 31], "pre_edge_range": "-150, -30",
       "post_edge_range": "150, 850", "nnorm": "1"}


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _xdi(path: Path) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(path, comments="#")
    return data[:, 0], data[:, 1]


@pytest.fixture
def proxy():
    """bluesky's 0MQ proxy in its own process (as at a beamline), killed at the end."""
    in_port, out_port = _ports(2)
    proc = subprocess.Popen([sys.executable, "-c", "from bluesky.callbacks.zmq import Proxy; "
                             f"Proxy(in_address={in_port}, out_address={out_port}).start()"])
    time.sleep(1.0)
    assert proc.poll() is None, "the bluesky proxy did not start"
    yield in_port, out_port
    proc.kill()
    proc.wait(10)


def test_bluesky_scans_are_fitted_on_their_stop_documents(proxy, tmp_path):
    from bluesky import RunEngine
    from bluesky import plans as bp
    from bluesky.callbacks.zmq import Publisher
    from ophyd.sim import SynAxis, SynSignal

    in_port, out_port = proxy
    xas = Registry.discover(Settings(plugin_path=(), builtins=True, entry_points=False)).get("xas_match")
    out = tmp_path / "live"
    live = {"bluesky": {"spectra": {"address": f"tcp://127.0.0.1:{out_port}", "mode": "run",
                                    "keys": {"energy": "energy", "mu": "mu"},
                                    "filters": {"plan_name": "list_scan"}}},
            "until": 2, "idle": 60}
    box: dict = {}
    job = threading.Thread(target=lambda: box.setdefault("r", run_plugin(xas, {"extra": LCF}, output_dir=out,
                                                                         live=live)), daemon=True)
    job.start()
    deadline = time.monotonic() + 30
    while not ((out / "job.json").exists() and json.loads((out / "job.json").read_text())["status"] == "running"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)  # the subscriber's connection to the proxy (0MQ slow joiner)

    # a beamline: an energy motor and a detector whose reading follows a measured Au L3 spectrum
    energy = SynAxis(name="energy")
    files = [SERIES / "t0000.12h.xdi", SERIES / "t0720.00h.xdi"]
    spectrum = dict(zip(("E", "mu"), _xdi(files[0])))
    mu = SynSignal(func=lambda: float(np.interp(energy.readback.get(), spectrum["E"], spectrum["mu"])), name="mu")
    RE = RunEngine({})
    # closed explicitly: a garbage-collected zmq.Context with a live socket blocks gc forever
    # (its sockets' weak references are cleared before its __del__ runs term())
    publisher = Publisher(f"localhost:{in_port}")
    RE.subscribe(publisher)
    time.sleep(0.5)
    try:
        for k, path in enumerate(files):
            spectrum["E"], spectrum["mu"] = _xdi(path)
            RE(bp.list_scan([mu], energy, list(spectrum["E"]),
                            md={"sample": path.stem, "element": "Au", "edge": "L3"}))
            if k == 0:
                RE(bp.count([mu], 3, md={"sample": "alignment"}))  # not a list_scan: filtered out
        job.join(120)
    finally:
        publisher.close()
    result = box["r"]
    assert result.ok, result.error
    assert result.summary["spectra"] == 2 and result.record["live"]["stop"] == "until 2 items"
    counts = result.record["live"]["sources"]["spectra"]
    assert counts["rejected"] == 0 and counts["received"] == 2

    fits = [e["data"] for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    assert [f["spectrum"] for f in fits] == [f"scan 1 {files[0].stem}", f"scan 3 {files[1].stem}"]
    # each spectrum fitted offline from its file: the same fractions (the batch window of a
    # series depends on every spectrum's range, so each is fitted alone as the live job does)
    for k, (fit, path) in enumerate(zip(fits, files)):
        offline = run_plugin(xas, {"extra": LCF}, inputs={"spectra": [str(path)]}, output_dir=tmp_path / f"off{k}")
        assert offline.ok, offline.error
        (expected,) = offline.summary["weights"].values()
        for standard in STANDARDS:
            assert abs(fit["weights"][standard] - expected[standard]) < 2e-4, (standard, fit, expected)
    # the reaction: gold goes from the chloride towards the metal/sulphide over 720 h
    assert fits[0]["weights"]["Au3_Cl_aq"] > fits[1]["weights"]["Au3_Cl_aq"]
    assert (out / "lcf.csv").exists() and (out / "normalized.h5").exists()
