"""plugins/pdf/pipeline.py on its own: the steps a batch run and a live stream share."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from hisci.builtin_plugins.pdf import pipeline
from hisci.builtin_plugins.pdf.fileio import iter_frames, read_mask, read_pdfgetx3
from hisci.builtin_plugins.pdf.integration import load_geometry
from hisci.builtin_plugins.pdf.transform import PDFConfig

from .pdf_helpers import NI_CONFIG, NI_SHELLS, background_curve, load_chi, write_example


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    files = write_example(tmp_path_factory.mktemp("ex"))
    (_, frame), = list(iter_frames(files["image"]))
    return files, frame


def test_per_frame_rows_equal_the_batch_rows(example):
    files, frame = example
    ai = load_geometry(files["poni"])
    kw = {"npt": 800, "polarization": 0.99, "mask": read_mask(files["mask"])}
    batch = pipeline.setup_integrator(ai, frame, **kw).process_frames([frame, frame * 2.0])
    live = pipeline.setup_integrator(ai, frame, **kw)
    rows = np.vstack([pipeline.process_frame(live, frame), live.process_frame(frame * 2.0)])
    assert rows.shape == batch.shape == (2, live.q.size)
    finite = np.isfinite(batch)
    assert np.array_equal(finite, np.isfinite(rows))
    # the second row goes through the cached CSR product: float32 sums, ~1e-6 relative
    np.testing.assert_allclose(rows[finite], batch[finite], rtol=1e-5)
    np.testing.assert_allclose(batch[1][finite[1]], 2 * batch[0][finite[0]], rtol=1e-5)
    assert live.info()["masked_pixels"] >= int(kw["mask"].sum())


def test_correct_with_auto_scale_keeps_the_first_pattern_non_negative():
    q, inten = load_chi()
    bg = background_curve(q)
    corrected = pipeline.correct(np.vstack([inten + 0.5 * bg]), q, (q, bg), bgscale=None, despike=False,
                                 logger=logging.getLogger("test"))
    # the scale is the 0.5th percentile of I/I_bg (>= 0.5 here, as I >= 0), capped at 1,
    # so at most ~0.5 % of the supported bins go negative
    assert 0.5 <= corrected.bgscale <= 1.0
    assert np.mean(corrected.stack < 0) <= 0.006


def test_correct_removes_the_known_spike_and_subtracts_a_given_scale():
    q, raw = load_chi(despike=False)
    corrected = pipeline.correct(raw[None, :], q, (q, np.ones_like(q)), bgscale=2.0)
    assert corrected.spikes_removed == 1 and corrected.bgscale == 2.0
    reference = load_chi()[1]
    np.testing.assert_allclose(corrected.stack[0], reference - 2.0, rtol=0, atol=1e-9 * raw.max())


def test_transform_and_write_outputs_find_the_ni_shells(tmp_path):
    q, inten = load_chi()
    config = PDFConfig(**NI_CONFIG)
    result, seconds = pipeline.transform(q, inten[None, :], config)
    assert seconds >= 0
    header = pipeline.file_header(config, 0.0, result.degree, "Ni_chi_file.chi", "")
    peaks = pipeline.write_outputs(tmp_path, ["Ni"], q, result, config, header)
    assert abs(peaks[0] - NI_SHELLS[0]) < 0.04
    r, g, cfg = read_pdfgetx3(tmp_path / "Ni.gr")
    assert cfg["composition"] == "Ni" and r[0] == pytest.approx(0.0) and g.size == r.size


def test_transform_errors_name_their_setting():
    q, inten = load_chi()
    with pytest.raises(ValueError) as info:
        pipeline.transform(q, inten[None, :], PDFConfig(**{**NI_CONFIG, "qmax": 40.0, "qmaxinst": 40.0}))
    assert pipeline.setting_named(str(info.value)) in ("qmax", "qmaxinst")
