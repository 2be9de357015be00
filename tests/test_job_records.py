"""The job record's state machine, concurrent writers, and `hicli db rebuild` (SQLite and a
real PostgreSQL)."""

from __future__ import annotations

import json
import logging
import multiprocessing
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hicli.main import cli as hicli
from hisci.jobs.book import JobBook
from hisci.jobs.index import jobs
from hisci.jobs.record import TRANSITIONS, IllegalTransition, JobRecord, JobState

Q, H, R, S, F, C = (JobState.QUEUED, JobState.HELD, JobState.RUNNING, JobState.SUCCEEDED,
                    JobState.FAILED, JobState.CANCELLED)


def doc(state: JobState = Q, **fields) -> dict:
    return {"id": uuid.uuid4().hex[:16], "plugin": {"id": "table_plot", "version": "1.0.0"}, "owner": "alice",
            "status": state.value, "created": "2026-12-01T10:00:00.000+00:00", "params": {}, **fields}


def move(record: JobRecord, target: JobState) -> bool:
    if target == R:
        return record.start(worker="w", host="h")
    if target == H:
        return record.hold("waiting for a bigger worker")
    if target == Q:
        return record.release() if record.state == H else record.requeue("again")
    return record.finish(target, None if target == S else f"why {target.value}")


LEGAL = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]


@pytest.mark.parametrize(("start", "target"), LEGAL, ids=[f"{a.value}->{b.value}" for a, b in LEGAL])
def test_every_legal_transition(start, target) -> None:
    record = JobRecord(doc(start, attempts=1, started="2026-12-01T10:00:01.000+00:00"))
    assert move(record, target) is True and record.state == target
    if target == R:
        assert record.attempts == 2 and record.data["worker"] == "w" and record.data["started"]
    if target.finished:
        assert record.data["finished"] and record.reason == (None if target == S else f"why {target.value}")
    if start in (R, F, C) and target == Q:
        assert record.data["history"][-1]["status"] == start.value and record.data["started"] is None


ILLEGAL = [(S, R), (S, Q), (S, F), (F, S), (C, R), (Q, S), (H, R), (F, C), (R, H), (C, S)]


@pytest.mark.parametrize(("start", "target"), ILLEGAL, ids=[f"{a.value}->{b.value}" for a, b in ILLEGAL])
def test_illegal_transitions_raise_in_strict_mode(start, target) -> None:
    record = JobRecord(doc(start))
    with pytest.raises(IllegalTransition, match=f"{start.value} -> {target.value} is not allowed"):
        move(record, target)
    assert record.state == start


def test_illegal_transition_is_a_logged_refusal_in_production(monkeypatch, caplog) -> None:
    monkeypatch.delenv("HISCI_STRICT_STATES")
    record = JobRecord(doc(S, reason=None))
    with caplog.at_level(logging.WARNING, "hisci.jobs.record"):
        assert record.finish(F, "late writer") is False
    assert record.state == S and record.reason is None
    assert "succeeded -> failed is not allowed" in caplog.text


def test_progress_only_while_running_and_note_cannot_set_state() -> None:
    record = JobRecord(doc(Q))
    with pytest.raises(IllegalTransition, match="progress while queued"):
        record.progress(0.5, "half")
    record.start()
    assert record.progress(0.123456, "half") and record.data["progress"] == 0.1235
    with pytest.raises(Exception, match="note\\(\\) cannot change the state"):
        record.note(status="succeeded")


def test_the_one_retry_rule() -> None:
    record = JobRecord(doc(Q, retries=1))
    record.start()
    record.finish(F, "boom")
    assert record.may_retry()  # attempt 1 of 1 + 1 retry
    record.requeue("boom")
    record.start()
    record.finish(F, "boom again")
    assert not record.may_retry() and record.attempts == 2
    cancelled = JobRecord(doc(Q, retries=5))
    cancelled.start()
    cancelled.finish(C, "cancelled by request")
    assert not cancelled.may_retry()


def test_fail_requeues_in_the_same_change_while_the_retry_rule_allows() -> None:
    record = JobRecord(doc(Q, retries=1))
    record.start(worker="w1")
    assert record.fail("boom", outputs=["log.txt"]) and record.state == Q  # never seen as failed
    assert record.data["history"] == [{**record.data["history"][0], "attempt": 1, "status": "failed",
                                       "reason": "boom", "worker": "w1"}]
    assert record.reason is None and record.data["message"] == "retrying after: boom"
    record.start(worker="w2")
    assert record.fail("boom again") and record.state == F and record.reason == "boom again"
    with pytest.raises(IllegalTransition, match="succeeded -> failed"):
        JobRecord(doc(S)).fail("too late")


def _hammer(data_dir: str, url: str | None, job_id: str, tag: str, n: int) -> None:
    book = JobBook(Path(data_dir), url)
    for i in range(n):
        def change(r: JobRecord, i: int = i) -> None:
            r.note(**{f"{tag}_{i}": i, "count": r.data.get("count", 0) + 1})
        book.apply(job_id, change)


def test_two_processes_updating_one_job_lose_no_field(tmp_path, database_url) -> None:
    book = JobBook(tmp_path, database_url)
    (record,) = book.create(doc(Q, retry_of="0123456789abcdef"))
    n = 40
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path), database_url, record.id, tag, n)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for stored in (book.get(record.id).data, json.loads((tmp_path / "jobs" / record.id / "job.json").read_text())):
        assert stored["count"] == 2 * n
        assert all(stored[f"{t}_{i}"] == i for t in "ab" for i in range(n))
        assert stored["retry_of"] == "0123456789abcdef"


def _index_rows(book: JobBook) -> list[dict]:
    with book.engine.connect() as conn:
        rows = conn.execute(sa.select(jobs).order_by(jobs.c.id)).mappings().all()
    return [dict(r) for r in rows]


def test_db_rebuild_of_1000_folders_equals_the_live_index(tmp_path, database_url, monkeypatch) -> None:
    book = JobBook(tmp_path, database_url)
    states = [Q, R, S, F, C, H]
    records = [JobRecord(doc(states[i % 6], created=f"2026-12-01T10:{i // 60 % 60:02d}:{i % 60:02d}.000+00:00",
                             owner=f"user{i % 7}", attempts=i % 3, parent_id=None if i % 10 else "feedfacefeedface",
                             kind="job" if i % 10 else "chunk", reason=f"r{i}" if i % 6 == 3 else None))
               for i in range(1000)]
    book.create(*records)
    live = _index_rows(book)
    (tmp_path / "jobs" / "0000000000000bad").mkdir()
    (tmp_path / "jobs" / "0000000000000bad" / "job.json").write_text("{not json")
    monkeypatch.setenv("HISCI_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(hicli, ["db", "rebuild", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "indexed 1000 jobs; 1 folders unreadable" in result.stdout
    assert "unreadable: 0000000000000bad: JSONDecodeError" in result.stderr
    assert len(live) == 1000 and _index_rows(book) == live


def test_reaper_filter_names_exactly_the_active_states(tmp_path) -> None:
    import re

    from hisci.jobs.index import ACTIVE_SQL
    from hisci.jobs.record import ACTIVE

    assert set(re.findall(r"'(\w+)'", ACTIVE_SQL)) == {s.value for s in ACTIVE}
    book = JobBook(tmp_path)
    with book.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN SELECT doc FROM jobs WHERE {ACTIVE_SQL}").all()
    assert "ix_jobs_active" in str(plan)
