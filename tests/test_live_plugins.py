"""Built-in plugins in live mode: pdf (folder), nhit_trigger (ZeroMQ), xas_match (Bluesky)."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hisci import Registry, Settings, run_plugin
from hisci.live import read_events

zmq = pytest.importorskip("zmq", reason="pyzmq is in the live extra: pip install -e '.[all]'")
BUILTIN = Path(__file__).parents[1] / "plugins"


@pytest.fixture(scope="module")
def registry():
    return Registry.discover(Settings(plugin_path=(), builtins=True, entry_points=False))


def _write_h5(path: Path, image: np.ndarray) -> None:
    import h5py

    tmp = path.with_suffix(".writing")
    with h5py.File(tmp, "w") as fh:
        fh.create_dataset("entry/data/data", data=image)
    tmp.rename(path)


def test_pdf_live_frames_become_gr_and_match_the_batch_run(registry, tmp_path):
    import h5py

    pdf = registry.get("pdf")
    example = BUILTIN / "pdf" / "example"
    with h5py.File(example / "Ni_example.h5") as fh:
        image = fh["entry/data/data"][()]
    folder, out = tmp_path / "run42", tmp_path / "live"
    folder.mkdir()
    request = pdf.example_request()  # poni, mask, background, bgscale 0.85, rpoly 2, npt 800
    del request["data"]["image"]
    for entry in request["data"].values():
        entry["link"] = str(BUILTIN / "pdf" / entry["link"])
    box: dict = {}
    thread = threading.Thread(target=lambda: box.setdefault("r", run_plugin(
        pdf, request, output_dir=out, live={"watch": {"image": str(folder)}, "until": 3, "settle": 0.1,
                                            "poll": 0.05})))
    thread.start()
    rng = np.random.default_rng(1)
    frames = [image, (image * 1.05).astype(image.dtype), image + rng.poisson(2, image.shape).astype(image.dtype)]
    for k, frame in enumerate(frames):
        _write_h5(folder / f"frame{k}.h5", frame)
        time.sleep(0.3)
    thread.join(120)
    live = box["r"]
    assert live.ok, live.error
    published = [e for e in read_events(out / "live" / "events.jsonl") if e["type"] == "live"]
    assert [e["seq"] for e in published] == [1, 2, 3]
    for event in published:
        assert abs(event["data"]["first_peak_r"] - 2.49) < 0.05  # Ni nearest neighbours, a/sqrt(2)
        assert len(event["data"]["r"]) == len(event["data"]["gr"]) <= 600
    # warm integrator: frames after the first take well under a second of processing
    assert max(e["data"]["seconds"] for e in published[1:]) < 1.0
    # the final outputs equal a batch run over the same files
    batch = run_plugin(pdf, request, inputs={"image": sorted(str(p) for p in folder.glob("*.h5"))},
                       output_dir=tmp_path / "batch")
    assert batch.ok, batch.error
    np.testing.assert_allclose(np.load(out / "gr_stack.npy"), np.load(tmp_path / "batch" / "gr_stack.npy"),
                               rtol=1e-6, atol=1e-8)
    assert live.summary["n_frames"] == 3 and live.record["live"]["stop"] == "until 3 items"
    assert (out / "gr.json").exists()
