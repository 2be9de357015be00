"""Threads per job (HISCI_WORKER_THREADS -> ctx.threads) and the CT merge without a copy."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from hisci import Registry, run_plugin
from hisci.context import RunContext
from hisci.threads import THREADS_ENV, share_per_worker, usable_cores, worker_threads


def test_worker_threads_reads_the_setting_else_the_usable_cores() -> None:
    assert worker_threads({THREADS_ENV: "3"}) == 3
    assert worker_threads({}) == usable_cores() == len(os.sched_getaffinity(0))
    with pytest.raises(ValueError, match="HISCI_WORKER_THREADS='zero': give a positive whole number"):
        worker_threads({THREADS_ENV: "zero"})
    with pytest.raises(ValueError, match="HISCI_WORKER_THREADS='0'"):
        worker_threads({THREADS_ENV: "0"})


def test_share_per_worker_splits_the_host_cores() -> None:
    assert share_per_worker(2, cores=16) == 8
    assert share_per_worker(3, cores=16) == 5
    assert share_per_worker(4, cores=2) == 1  # never zero


def test_run_context_exposes_the_thread_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = logging.getLogger("test")
    monkeypatch.setenv(THREADS_ENV, "5")
    assert RunContext({}, {}, tmp_path / "a", tmp_path, log).threads == 5
    assert RunContext({}, {}, tmp_path / "b", tmp_path, log, threads=2).threads == 2
    monkeypatch.delenv(THREADS_ENV)
    assert RunContext({}, {}, tmp_path / "c", tmp_path, log).threads == usable_cores()


def test_chunked_ct_merge_links_the_parts_instead_of_copying(tmp_path: Path) -> None:
    plugin = Registry.discover().get("ct_recon")
    single = run_plugin(plugin, example=True, output_dir=tmp_path / "single")
    split = run_plugin(plugin, example=True, output_dir=tmp_path / "split", jobs=2, chunks=3)
    assert single.ok and split.ok, split.error
    parts = sorted(p.name for p in (tmp_path / "split/chunks").glob("part-*.h5"))
    assert parts == ["part-0000.h5", "part-0001.h5", "part-0002.h5"]
    with h5py.File(tmp_path / "single/recon.h5") as a, h5py.File(tmp_path / "split/recon.h5") as b:
        assert b["exchange/data"].is_virtual and not a["exchange/data"].is_virtual
        va, vb = a["exchange/data"][()], b["exchange/data"][()]
        assert dict(b["exchange/data"].attrs)["center"] == dict(a["exchange/data"].attrs)["center"]
    assert va.shape == vb.shape and np.isfinite(vb).all()
    assert np.abs(va - vb).max() <= 1e-6 * (va.max() - va.min())
    # the job folder moves as a whole: the virtual dataset's paths are relative
    moved = tmp_path / "moved"
    (tmp_path / "split").rename(moved)
    with h5py.File(moved / "recon.h5") as b:
        assert np.array_equal(b["exchange/data"][()], vb)
