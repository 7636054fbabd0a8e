"""Anomalies follow the records' retention: archived to gzip JSONL per day, then their rows and YAML files go."""

from __future__ import annotations

import gzip
import json
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.cli import main
from operate_mcp.config import Settings
from operate_mcp.model.observation import Anomaly
from operate_mcp.records.anomaly_store import AnomalyStore, BaselineRow, anomaly_id
from operate_mcp.records.models import ExecutionRecord, RecordError, RunStatus, new_record_id
from operate_mcp.records.store import RecordStore
from operate_mcp.server.app import App

NOW = datetime(2026, 3, 20, 9, 30, tzinfo=UTC)
OLD = datetime(2026, 2, 1, 23, 59, 30, tzinfo=UTC)  # 47 days before NOW: past a 30-day retention
OLDER = datetime(2026, 1, 31, 8, 0, tzinfo=UTC)
RECENT = NOW - timedelta(days=2)


def anomaly(at: datetime, rule: str = "unexpected_restart", **fields: Any) -> Anomaly:
    run_id = new_record_id(at)
    target = fields.pop("target", "deployment/web")
    return Anomaly.model_validate({
        "id": anomaly_id(run_id, rule, target), "run_id": run_id, "rule": rule, "severity": "P3",
        "detected_at": at, "category": "update", "namespace": "shop", "target": target,
        "expected": "no container restarts", "actual": "web-1 restarted 2 time(s)", **fields,
    })


def archive_of(data_dir: Path, day: str) -> list[dict[str, Any]]:
    with gzip.open(data_dir / "archive" / f"anomalies-{day}.jsonl.gz", "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def yaml_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "anomalies").rglob("*.yaml"))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnomalyStore]:
    with AnomalyStore(tmp_path) as s:
        yield s


def test_old_anomalies_are_archived_per_day_then_their_rows_and_yaml_files_deleted(
    store: AnomalyStore, tmp_path: Path
) -> None:
    old, older, recent = anomaly(OLD), anomaly(OLDER, rule="slow_rollout"), anomaly(RECENT)
    store.save_many([old, older, recent])

    result = store.apply_retention(30, now=NOW)

    assert result.cutoff == datetime(2026, 2, 18, tzinfo=UTC)
    assert (result.archived, result.deleted, result.yaml_removed) == (2, 2, 2)
    assert result.files == [tmp_path / "archive" / "anomalies-2026-01-31.jsonl.gz",
                            tmp_path / "archive" / "anomalies-2026-02-01.jsonl.gz"]
    assert [Anomaly.model_validate(a) for a in archive_of(tmp_path, "2026-02-01")] == [old]
    assert [Anomaly.model_validate(a) for a in archive_of(tmp_path, "2026-01-31")] == [older]
    assert store.query(limit=10) == [recent]
    assert yaml_files(tmp_path) == [store.file_of(recent)]
    assert not (tmp_path / "anomalies" / "2026-02-01").exists()  # emptied day directories go too
    assert (result.files[0].stat().st_mode & 0o777) == 0o600


def test_recent_anomalies_and_every_baseline_stay(store: AnomalyStore) -> None:
    recent = anomaly(datetime(2026, 2, 18, 0, 0, tzinfo=UTC))  # exactly at the cutoff: kept
    store.save(recent)
    baseline = BaselineRow(category="update", count=12, ewma=4.5, recent=[4.0, 5.0], recent_runs=["a", "b"],
                           updated_at=OLDER)
    store.save_baselines([baseline])

    result = store.apply_retention(30, now=NOW)

    assert (result.archived, result.deleted, result.files) == (0, 0, [])
    assert store.get(recent.id) == recent and store.file_of(recent).exists()
    assert store.baselines() == [baseline]


def test_archiving_twice_writes_each_anomaly_once_and_merges_by_id(store: AnomalyStore, tmp_path: Path) -> None:
    first = anomaly(OLD)
    store.save(first)
    store.apply_retention(30, now=NOW)
    body = (tmp_path / "archive" / "anomalies-2026-02-01.jsonl.gz").read_bytes()

    again = store.apply_retention(30, now=NOW)
    assert (again.archived, again.deleted, again.yaml_removed, again.files) == (0, 0, 0, [])
    assert (tmp_path / "archive" / "anomalies-2026-02-01.jsonl.gz").read_bytes() == body

    late = anomaly(OLD - timedelta(hours=1), rule="slow_rollout")  # the same day, stored after the first prune
    store.save(late)
    store.save(first)  # and the first one found again (its row had gone)
    store.apply_retention(30, now=NOW)
    ids = [a["id"] for a in archive_of(tmp_path, "2026-02-01")]
    assert sorted(ids) == sorted([first.id, late.id])


def test_yaml_files_left_by_a_crash_after_the_commit_are_removed_by_the_next_run(
    store: AnomalyStore, tmp_path: Path
) -> None:
    old = [anomaly(OLD), anomaly(OLD, rule="slow_rollout")]
    store.save_many(old)
    kept = tmp_path / "kept"
    shutil.copytree(tmp_path / "anomalies", kept)
    store.apply_retention(30, now=NOW)
    body = (tmp_path / "archive" / "anomalies-2026-02-01.jsonl.gz").read_bytes()
    shutil.copytree(kept, tmp_path / "anomalies", dirs_exist_ok=True)  # rows gone, files still there

    result = store.apply_retention(30, now=NOW)

    assert (result.archived, result.deleted, result.yaml_removed) == (0, 0, 2)
    assert yaml_files(tmp_path) == []
    assert (tmp_path / "archive" / "anomalies-2026-02-01.jsonl.gz").read_bytes() == body


def test_a_yaml_file_whose_row_vanished_unarchived_is_archived_before_it_is_removed(
    store: AnomalyStore, tmp_path: Path
) -> None:
    lost = anomaly(OLD)
    store.save(lost)
    with sqlite3.connect(tmp_path / "records.db") as db:  # the row deleted with no archive behind it
        db.execute("DELETE FROM anomalies")

    result = store.apply_retention(30, now=NOW)

    assert (result.archived, result.deleted, result.yaml_removed) == (1, 0, 1)
    assert [Anomaly.model_validate(a) for a in archive_of(tmp_path, "2026-02-01")] == [lost]
    assert yaml_files(tmp_path) == []


def test_a_yaml_file_that_does_not_parse_is_left_alone_and_logged(
    store: AnomalyStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stray = tmp_path / "anomalies" / "2026-02-01" / "notes.yaml"
    stray.parent.mkdir(parents=True)
    stray.write_text("expected: [unclosed\n")

    with caplog.at_level(logging.WARNING, logger="operate_mcp.records.anomaly_store"):
        result = store.apply_retention(30, now=NOW)

    assert result.yaml_removed == 0 and stray.exists()
    assert str(stray) in caplog.text and "left" in caplog.text


def test_negative_days_are_refused_naming_the_value(store: AnomalyStore) -> None:
    with pytest.raises(RecordError, match="not -3"):
        store.apply_retention(-3)


def test_runs_prune_prunes_anomalies_too_and_prints_both_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=40)
    with RecordStore(tmp_path) as runs, AnomalyStore(tmp_path) as anomalies:
        old = anomaly(long_ago)
        runs.save(ExecutionRecord(id=old.run_id, started_at=long_ago, triggered_by="cli", caller="alice",
                                  intent="deploy web", status=RunStatus.FAILED))
        anomalies.save_many([old, anomaly(long_ago, rule="slow_rollout"), anomaly(datetime.now(UTC))])

    assert main(["runs", "prune", "--days", "30", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "archived and deleted 1 run started before" in out
    assert "archived and deleted 2 anomalies detected before" in out
    assert "removed 2 anomaly YAML files" in out
    assert len(yaml_files(tmp_path)) == 1

    assert main(["runs", "prune", "--days", "30", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nothing to prune: no runs started before" in out
    assert "nothing to prune: no anomalies detected before" in out


def app_with_an_old_failure(data_dir: Path) -> tuple[App, Anomaly]:
    """An App over `data_dir` holding a failed run from 40 days ago (30 days' retention) and its anomaly."""
    long_ago = datetime.now(UTC) - timedelta(days=40)
    app = App(Settings(data_dir=data_dir, records_retention_days=30, knowledge_enabled=False), caller="test")
    old = anomaly(long_ago)
    app.records.save(ExecutionRecord(id=old.run_id, started_at=long_ago, triggered_by="cli", caller="alice",
                                     intent="deploy web", status=RunStatus.FAILED))
    app.anomalies.save(old)
    return app, old


def test_server_start_up_retention_prunes_runs_and_anomalies(tmp_path: Path) -> None:
    app, _ = app_with_an_old_failure(tmp_path)

    app._prune()

    assert app.records.search("").total == 0
    assert app.anomalies.query(limit=10) == [] and yaml_files(tmp_path) == []
    assert [p.name.split("-")[0] for p in sorted((tmp_path / "archive").iterdir())] == ["anomalies", "runs"]


def test_a_failing_records_retention_does_not_stop_the_anomalies(tmp_path: Path) -> None:
    app, old = app_with_an_old_failure(tmp_path)
    long_ago = old.detected_at
    # the runs' archive of that day cannot be written: a directory sits where the file goes
    (tmp_path / "archive" / f"runs-{long_ago.date().isoformat()}.jsonl.gz").mkdir(parents=True)

    app._prune()

    assert app.records.get(old.run_id).id == old.run_id  # still there: nothing deleted without its archive
    assert app.anomalies.query(limit=10) == []
    assert len(archive_of(tmp_path, long_ago.date().isoformat())) == 1


def test_an_unreadable_archive_stops_retention_with_its_name_and_deletes_nothing(tmp_path):
    """A corrupt day file would be overwritten by the merge, or skipped and the rows lost: neither."""
    from operate_mcp.records.archive import write_archive

    path = tmp_path / "archive" / "runs-2026-01-01.jsonl.gz"
    path.parent.mkdir()
    path.write_bytes(b"not gzip at all")
    with pytest.raises(RecordError, match=r"runs-2026-01-01\.jsonl\.gz.*move it aside"):
        write_archive(path, ['{"id": "run-1"}'])
    assert path.read_bytes() == b"not gzip at all"
