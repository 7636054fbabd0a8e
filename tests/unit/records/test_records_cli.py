"""`operate-mcp runs ...` and `operate-mcp metrics`: exit codes, formats, and errors people can act on."""

from __future__ import annotations

import argparse
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.records.cli import add_records_parsers
from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus
from operate_mcp.records.store import RecordStore

T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="operate-mcp")
    add_records_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def rec(n: int, status: RunStatus, intent: str, days_ago: int = 0, **fields: object) -> ExecutionRecord:
    started = T0 + timedelta(days=n)
    return ExecutionRecord.model_validate({
        "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}", "started_at": started,
        "finished_at": started + timedelta(seconds=30), "triggered_by": "cli", "caller": "alice", "intent": intent,
        "status": status, "duration_seconds": 30.0, "namespaces": ["shop"], **fields,
    })


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    with RecordStore(tmp_path) as store:
        store.save(rec(1, RunStatus.SUCCEEDED, "deploy checkout v2", tags=["ci"]))
        store.save(rec(2, RunStatus.FAILED, "deploy checkout [bold]v3[/bold]", failed_step="kubectl rollout status",
                       error="exit 1: timed out", commands=[CommandRecord(
                           index=1, argv=["kubectl", "rollout", "status", "deployment/checkout"], exit_code=1,
                           duration_seconds=30.0, stderr="error: timed out waiting for the condition")]))
    return tmp_path


def test_search_text_lists_matches_and_facets(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "search", "checkout", "--data-dir", str(data_dir)) == 0

    out = capsys.readouterr().out
    assert "2 runs match; showing 1-2 (page 1 of 1)" in out
    assert "deploy checkout [bold]v3[/bold]" in out  # user text is never read as rich markup
    assert "status: failed 1, succeeded 1" in out


def test_search_json_is_the_page_with_facets(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "search", "status:failed", "--format", "json", "--data-dir", str(data_dir)) == 0

    page = json.loads(capsys.readouterr().out)
    assert page["total"] == 1 and page["items"][0]["failed_step"] == "kubectl rollout status"
    assert page["facets"]["status"] == [{"value": "failed", "count": 1}]


def test_search_csv_exports_every_match(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "search", "", "--format", "csv", "--per-page", "1", "--data-dir", str(data_dir)) == 0

    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["status"] for r in rows] == ["failed", "succeeded"]


def test_a_malformed_query_exits_2_with_a_caret(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "search", "status:failed OR", "--data-dir", str(data_dir)) == 2

    err = capsys.readouterr().err
    assert "expected a term after 'OR'" in err and err.rstrip().endswith("^")


def test_show_and_summary(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_id = rec(2, RunStatus.FAILED, "x").id

    assert run("runs", "show", run_id, "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert run_id in out and "failed" in out and "error: timed out waiting for the condition" in out

    assert run("runs", "show", run_id, "--format", "json", "--data-dir", str(data_dir)) == 0
    assert json.loads(capsys.readouterr().out)["id"] == run_id

    assert run("runs", "summary", run_id, "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert "0/1 commands ok" in out and "suggestions:" in out and "kubectl rollout status" in out


def test_show_of_an_unknown_run_exits_1(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "show", "run-0000000000000-00000000", "--data-dir", str(data_dir)) == 1
    assert "no run 'run-0000000000000-00000000'" in capsys.readouterr().err


def test_prune_archives_old_runs(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("runs", "prune", "--days", "0", "--data-dir", str(data_dir)) == 0

    assert "archived and deleted 2 runs" in capsys.readouterr().out
    assert len(list((data_dir / "archive").glob("runs-*.jsonl.gz"))) == 2
    assert run("runs", "prune", "--days", "0", "--data-dir", str(data_dir)) == 0
    assert "nothing to prune" in capsys.readouterr().out


def test_metrics_text_and_json(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("metrics", "--by-intent", "--from", "2026-01-01", "--data-dir", str(data_dir)) == 0
    out = capsys.readouterr().out
    assert "total 2: 1 succeeded, 1 failed, 0 rolled back; success rate 50.0%" in out
    assert "rollout status deployment  (e.g. kubectl rollout status)" in out

    assert run("metrics", "--from", "2026-01-12", "--to", "2026-01-12", "--format", "json",
               "--data-dir", str(data_dir)) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["total"] == 1 and metrics["failed"] == 1


def test_metrics_refuses_a_backwards_window(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("metrics", "--from", "2026-02-01", "--to", "2026-01-01", "--data-dir", str(data_dir)) == 1
    assert "is after --to" in capsys.readouterr().err


def test_bad_numbers_are_usage_errors(data_dir: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run("runs", "search", "x", "--per-page", "0", "--data-dir", str(data_dir))
    assert exit_info.value.code == 2
