"""Parallel plugins run locally: plan/run_chunk/merge in N processes equals the whole run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hicli.main import cli as hicli
from hisci import Registry, Settings, run_plugin
from hisci.models.meta import Parallel
from hisci.parallel import chunk_count, parallel_entry, split_range

from .conftest import FIXTURE_PLUGINS


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.discover(Settings(plugin_path=(FIXTURE_PLUGINS,), entry_points=False))


class _Ctx:
    def __init__(self, target: int, spec: Parallel) -> None:
        self.chunk_target, self.parallel = target, spec


def test_split_range_is_contiguous_capped_and_aligned() -> None:
    spec = Parallel(over="rows", max_chunks=4, min_chunk=3)
    assert split_range(0, 10, _Ctx(3, spec)) == [(0, 3), (3, 6), (6, 10)]
    assert len(split_range(0, 100, _Ctx(50, spec))) == 4  # max_chunks
    assert split_range(0, 7, _Ctx(5, spec)) == [(0, 3), (3, 7)]  # at least 3 items a chunk
    aligned = split_range(5, 16, _Ctx(3, Parallel(over="rows")), align=2)
    assert [a for a, _ in aligned] == [5, 9, 13] and aligned[-1][1] == 16
    assert all((a - 5) % 2 == 0 for a, _ in aligned)
    assert chunk_count(1, 8, Parallel(over="rows")) == 1


def test_plugin_without_the_functions_is_not_parallel(registry: Registry) -> None:
    assert parallel_entry(registry.get("slow_plugin")) is None
    funcs = parallel_entry(registry.get("chunk_sum"))
    assert funcs is not None and funcs.spec.over == "batches"


def test_meta_schema_rejects_unknown_parallel_axis(plugin_copy, registry_from) -> None:
    def edit(meta):
        meta["runtime"]["parallel"] = {"over": "pixels"}
        return meta

    folder = plugin_copy("chunk_sum", "bad_axis", edit={"meta.json": edit})
    reg = registry_from(folder.parent)
    assert "bad_axis" not in reg.plugins
    text = str(next(r.error for r in reg.problems if r.id == "bad_axis"))
    assert "parallel" in text and "pixels" in text


def test_chunked_run_in_two_processes_equals_whole_run(registry: Registry, tmp_path: Path) -> None:
    plugin = registry.get("chunk_sum")
    whole = run_plugin(plugin, {"extra": {"n": 1000}}, output_dir=tmp_path / "whole")
    split = run_plugin(plugin, {"extra": {"n": 1000}}, output_dir=tmp_path / "split", jobs=2, chunks=7)
    assert whole.ok and split.ok, split.error
    assert split.summary["sum"] == whole.summary["sum"] == sum(k * k for k in range(1000))
    assert split.summary["chunks"] == 7
    assert len(split.summary["pids"]) == 2  # two processes did the work
    assert (tmp_path / "split/items.txt").read_bytes() == (tmp_path / "whole/items.txt").read_bytes()
    plan = json.loads((tmp_path / "split/chunks/plan.json").read_text())
    assert plan["over"] == "batches" and len(plan["chunks"]) == 7
    part = json.loads((tmp_path / "split/chunks/003/part.json").read_text())
    assert part["host"] and part["result"]["n"] == part["chunk"]["items"][1] - part["chunk"]["items"][0]
    assert json.loads((tmp_path / "split/job.json").read_text())["status"] == "succeeded"


def test_failing_chunk_fails_the_job_naming_the_chunk(registry: Registry, tmp_path: Path) -> None:
    plugin = registry.get("chunk_sum")
    result = run_plugin(plugin, {"extra": {"n": 40, "fail_chunk": 10}}, output_dir=tmp_path / "o",
                        jobs=1, chunks=4)
    assert result.status == "failed"
    assert "fails on purpose" in result.error
    assert "fails on purpose" in (tmp_path / "o/chunks/001/log.txt").read_text()


def test_cancel_reaches_every_running_chunk(registry: Registry, tmp_path: Path) -> None:
    plugin = registry.get("chunk_sum")
    started = time.monotonic()
    cancel = threading.Event()
    threading.Timer(4.0, cancel.set).start()
    result = run_plugin(plugin, {"extra": {"n": 20, "seconds": 60}}, output_dir=tmp_path / "o",
                        jobs=2, chunks=2, cancel_check=cancel.is_set)
    assert result.status == "cancelled"
    assert time.monotonic() - started < 30
    assert (tmp_path / "o/chunks/CANCEL").exists()
    for index in range(2):
        log = tmp_path / f"o/chunks/{index:03d}/log.txt"
        assert "cancelled" in log.read_text(), f"chunk {index} did not stop"
        assert not (log.parent / "part.json").exists()


def test_cli_run_jobs_and_chunks(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HISCI_PLUGIN_PATH", str(FIXTURE_PLUGINS))
    result = cli.invoke(hicli, ["run", "chunk_sum", "--set", "extra.n=50", "--jobs", "1", "--chunks", "5",
                                "-o", str(tmp_path / "o"), "--quiet"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):result.stdout.rindex("}") + 1])
    assert summary["chunks"] == 5 and summary["sum"] == sum(k * k for k in range(50))
    assert sorted(p.name for p in (tmp_path / "o/chunks").iterdir()) == [
        "000", "001", "002", "003", "004", "plan.json"]
