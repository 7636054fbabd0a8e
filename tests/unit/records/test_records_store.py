"""The run store: atomic upserts, lookups, schema versions, retention that archives before it deletes, summaries."""

from __future__ import annotations

import gzip
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.records import store as store_module
from operate_mcp.records.models import (
    CommandRecord,
    ExecutionRecord,
    OutcomeCheck,
    RecordError,
    RecordNotFound,
    RunStatus,
)
from operate_mcp.records.store import RecordStore, read_archive

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def record(n: int, *, at: datetime | None = None, status: RunStatus = RunStatus.SUCCEEDED, intent: str = "scale api",
           **fields: object) -> ExecutionRecord:
    started = at or T0 + timedelta(days=n)
    return ExecutionRecord.model_validate({
        "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}",
        "started_at": started,
        "finished_at": started + timedelta(seconds=10),
        "triggered_by": "cli",
        "caller": "alice",
        "intent": intent,
        "status": status,
        "duration_seconds": 10.0,
        **fields,
    })


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path)


def test_saving_the_same_id_again_updates_the_record_and_its_index(store: RecordStore) -> None:
    running = record(1, status=RunStatus.RUNNING, intent="deploy checkout", tags=["ci"], namespaces=["shop"])
    store.save(running)
    done = running.model_copy(update={"status": RunStatus.FAILED, "error": "ImagePullBackOff", "tags": ["hotfix"],
                                      "namespaces": ["payments"]})
    store.save(done)

    assert store.count() == 1
    assert store.get(done.id) == done
    assert store.search("status:failed imagepullbackoff tag:hotfix namespace:payments").total == 1
    assert store.search("tag:ci").total == 0 and store.search("namespace:shop").total == 0
    assert store.search("status:running").total == 0


def test_a_missing_run_is_an_error_that_says_where_to_look(store: RecordStore) -> None:
    with pytest.raises(RecordNotFound, match="operate-mcp runs search"):
        store.get("run-0000000000000-00000000")


def test_a_second_process_sees_committed_records(tmp_path: Path) -> None:
    writer, reader = RecordStore(tmp_path), RecordStore(tmp_path)
    writer.save(record(1))

    assert reader.search("").total == 1
    writer.close()
    reader.close()


def test_a_database_from_a_newer_version_is_refused_not_damaged(tmp_path: Path) -> None:
    RecordStore(tmp_path).close()
    with sqlite3.connect(tmp_path / "records.db") as db:
        db.execute("PRAGMA user_version = 99")

    with pytest.raises(RecordError, match="schema version 99, newer"):
        RecordStore(tmp_path)


def test_reopening_keeps_the_schema_and_the_data(tmp_path: Path) -> None:
    with RecordStore(tmp_path) as first:
        first.save(record(1))
    with RecordStore(tmp_path) as second:
        assert second.count() == 1


def test_a_failed_save_leaves_nothing_behind(store: RecordStore, monkeypatch: pytest.MonkeyPatch) -> None:
    good, bad = record(1), record(2)

    def explode(*args: object) -> tuple[str, str, str, str]:
        raise RuntimeError("disk on fire")

    store.save(good)
    monkeypatch.setattr(store_module, "_fts_columns", explode)
    with pytest.raises(RuntimeError):
        store.save_many([record(3), bad])

    assert store.count() == 1
    assert store._read("SELECT COUNT(*) FROM run_tags")[0][0] == 0


# -- retention ---------------------------------------------------------------------------------------


def test_retention_archives_then_deletes_exactly_the_old_records(store: RecordStore) -> None:
    # runs on 2026-01-02 .. 2026-01-21; now 2026-02-15, keep 30 days -> cutoff 2026-01-16 00:00 UTC,
    # so runs 1..14 (2026-01-02 .. 2026-01-15) go, 15..20 stay.
    store.save_many(record(n, tags=["t"], namespaces=["ns"]) for n in range(1, 21))
    old = {record(n).id for n in range(1, 15)}

    result = store.apply_retention(30, now=datetime(2026, 2, 15, 9, 0, tzinfo=UTC))

    assert result.cutoff == datetime(2026, 1, 16, tzinfo=UTC)
    assert result.archived == result.deleted == 14
    assert [p.name for p in result.files] == [f"runs-2026-01-{d:02d}.jsonl.gz" for d in range(2, 16)]
    archived = [r for path in result.files for r in read_archive(path)]
    assert {r.id for r in archived} == old
    assert archived[0] == record(1, tags=["t"], namespaces=["ns"])
    assert store.count() == 6 and not old & {r.id for r in store.search("", per_page=100).items}
    assert store.search("tag:t").total == 6 and store.search("scale").total == 6  # side tables and FTS too
    assert store._read("SELECT COUNT(*) FROM runs_fts")[0][0] == 6
    assert store._read("SELECT COUNT(*) FROM run_records")[0][0] == 6
    assert (result.files[0].stat().st_mode & 0o777) == 0o600


def test_retention_twice_is_a_no_op(store: RecordStore) -> None:
    store.save_many(record(n) for n in range(1, 5))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    store.apply_retention(1, now=now)

    again = store.apply_retention(1, now=now)

    assert again.deleted == 0 and again.files == []


def test_the_archive_is_gzip_jsonl_readable_without_operate_mcp(store: RecordStore) -> None:
    store.save(record(1, intent="résumé ü"))

    path = store.apply_retention(0, now=datetime(2026, 2, 1, tzinfo=UTC)).files[0]

    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh]
    assert [line["intent"] for line in lines] == ["résumé ü"]


def test_nothing_is_deleted_when_the_archive_cannot_be_written(
    store: RecordStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save_many(record(n) for n in range(1, 4))

    def full_disk(path: Path, lines: list[str]) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "_write_archive", full_disk)
    with pytest.raises(OSError, match="No space"):
        store.apply_retention(0, now=datetime(2026, 3, 1, tzinfo=UTC))

    assert store.count() == 3


def test_a_crash_between_archive_and_delete_is_repaired_without_duplicates(store: RecordStore) -> None:
    # the archive of 2026-01-02 already holds run 1 (written before a crash), the database still has it
    first = record(1)
    archive = store.data_dir / "archive"
    archive.mkdir()
    with gzip.open(archive / "runs-2026-01-02.jsonl.gz", "wt") as fh:
        fh.write(first.model_dump_json() + "\n")
    second = record(2, at=first.started_at + timedelta(hours=1))
    store.save_many([first, second])

    store.apply_retention(0, now=datetime(2026, 3, 1, tzinfo=UTC))

    assert [r.id for r in read_archive(archive / "runs-2026-01-02.jsonl.gz")] == [first.id, second.id]
    assert store.count() == 0


def test_retention_days_default_to_the_store_setting(tmp_path: Path) -> None:
    store = RecordStore(tmp_path, retention_days=7)
    store.save(record(1, at=datetime.now(UTC) - timedelta(days=9)))
    store.save(record(2, at=datetime.now(UTC) - timedelta(days=2)))

    assert store.apply_retention().deleted == 1
    with pytest.raises(RecordError, match="0 or more"):
        store.apply_retention(-1)


# -- summaries ---------------------------------------------------------------------------------------


def test_a_failed_rollout_summary_suggests_rollout_status(store: RecordStore) -> None:
    argv = ["kubectl", "rollout", "status", "deployment/checkout", "-n", "shop"]
    failed = record(
        1, status=RunStatus.FAILED, intent="deploy checkout v3", namespaces=["shop"],
        resources=["deployment/checkout"],
        commands=[CommandRecord(index=1, argv=argv, exit_code=1, duration_seconds=120.0,
                                stderr="error: deployment \"checkout\" exceeded its progress deadline")],
        failed_step="kubectl rollout status deployment/checkout -n shop",
        error="exit 1: error: deployment \"checkout\" exceeded its progress deadline",
    )
    store.save(failed)

    summary = store.summary(failed.id)

    assert summary.one_line.startswith(f"{failed.id}: failed in 10s - 'deploy checkout v3'; 0/1 commands ok")
    assert "failed at kubectl rollout status deployment/checkout -n shop" in summary.one_line
    assert any("kubectl rollout status deployment/checkout -n shop" in s for s in summary.suggestions)
    assert any("exceeded its progress deadline" in e for e in summary.errors)
    assert summary.key_events[1].startswith("step 1: kubectl rollout status") and "exit 1" in summary.key_events[1]


def test_a_dry_run_that_passed_before_a_failed_apply_is_called_drift(store: RecordStore) -> None:
    failed = record(
        1, status=RunStatus.FAILED, namespaces=["shop"],
        commands=[CommandRecord(index=1, argv=["kubectl", "apply", "-f", "-", "-n", "shop"], exit_code=1,
                                duration_seconds=1.0, dry_run_ok=True,
                                stderr="Error from server (Conflict): the object has been modified")],
    )
    store.save(failed)

    suggestions = store.summary(failed.id).suggestions

    assert any("drift" in s and "passed at analysis time" in s for s in suggestions)
    assert any("update conflict" in s for s in suggestions)


def test_a_healthy_run_has_no_suggestions(store: RecordStore) -> None:
    ok = record(1, outcome_checks=[OutcomeCheck(name="rollout", ok=True)])
    store.save(ok)

    summary = store.summary(ok.id)

    assert summary.suggestions == [] and summary.errors == []
    assert summary.key_events[-1].endswith("finished succeeded")


def test_export_streams_every_match_across_batches_even_with_equal_start_times(store: RecordStore) -> None:
    same = T0 + timedelta(days=3)
    store.save_many(record(n, at=same if n % 2 else None) for n in range(1, 1201))  # 600 share one instant

    exported = json.loads(store.export("scale", "json"))

    assert len(exported) == 1200 and len({r["id"] for r in exported}) == 1200
    starts = [r["started_at"] for r in exported]
    assert starts == sorted(starts, reverse=True)
    assert len(json.loads(store.export("", "json", limit=501))) == 501


def test_searches_and_saves_from_several_threads_share_one_store(store: RecordStore) -> None:
    import threading

    errors: list[BaseException] = []

    def work(base: int) -> None:
        try:
            for i in range(25):
                store.save(record(base + i, tags=["t"]))
                page = store.search("tag:t scale", per_page=500)
                assert page.total == len(page.items) == len({r.id for r in page.items})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert store.search("tag:t").total == 100


def test_a_summary_shows_the_first_error_the_top_templates_and_a_status_mark(store: RecordStore) -> None:
    from operate_mcp.model.observation import LogAnalysis, TemplateCount

    analysis = LogAnalysis(
        pod="web-1", namespace="shop", container="web", errors=3, lines=10,
        first_error="ERROR cannot connect to database host=db",
        templates=[TemplateCount(template="cannot connect to database host=<*>", count=2),
                   TemplateCount(template="panic: <*>", count=1, new=True)],
    )
    failed = record(1, status=RunStatus.FAILED, intent="deploy web", log_analysis=[analysis],
                    anomalies=["anom-1-abc"])
    store.save(failed)
    summary = store.summary(failed.id)
    assert summary.mark == "✗⚠"
    assert summary.first_error == "ERROR cannot connect to database host=db"
    assert summary.top_templates == ["NEW (x1) panic: <*>", "(x2) cannot connect to database host=<*>"]
    assert summary.anomalies == ["anom-1-abc"]
    ok = record(2, status=RunStatus.SUCCEEDED, intent="deploy web")
    store.save(ok)
    assert store.summary(ok.id).mark == "✓" and store.summary(ok.id).first_error is None
