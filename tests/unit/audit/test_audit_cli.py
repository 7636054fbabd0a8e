"""`operate-mcp audit ...`: exit codes, output formats, option rules."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.audit import AuditLog
from operate_mcp.audit.cli import add_audit_parser

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="operate-mcp")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


def build_log(data_dir: Path) -> None:
    log = AuditLog(data_dir)
    for i in range(4):
        log.append("execution.step", actor="alice", data={"step": i}, now=T0 + timedelta(hours=12 * i))


def test_verify_of_a_clean_log_exits_0_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path)

    assert run("audit", "verify", "--data-dir", str(tmp_path)) == 0

    out = capsys.readouterr().out
    assert "audit log verified" in out and "4 entries in 2 files" in out


def test_verify_reports_tampering_with_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path)
    path = tmp_path / "audit" / "2026-11-20.jsonl"
    path.write_text(path.read_text().replace('"step":1', '"step":7'))

    assert run("audit", "verify", "--data-dir", str(tmp_path), "--from", "2026-11-20", "--to", "2026-11-21") == 1

    out = capsys.readouterr().out
    assert "FAILED" in out
    assert "edited  2026-11-20.jsonl:2  entry seq 2 in 2026-11-20.jsonl line 2 was edited" in out


def test_verify_json_is_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path)

    assert run("audit", "verify", "--data-dir", str(tmp_path), "--date", "2026-11-21", "--format", "json") == 0

    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["files"] == ["2026-11-21.jsonl"] and report["entries_checked"] == 2


def test_verify_uses_the_settings_data_dir_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build_log(tmp_path)
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("OPERATE_MCP_CONFIG", raising=False)

    assert run("audit", "verify", "--format", "json") == 0
    assert json.loads(capsys.readouterr().out)["entries_checked"] == 4


@pytest.mark.parametrize(
    "window",
    [
        ["--date", "2026-11-20", "--days", "1"],
        ["--days", "1", "--from", "2026-11-20"],
        ["--days", "2", "--to", "2026-11-21"],
        ["--days", "0"],
        ["--date", "20-11-2026"],
    ],
)
def test_verify_rejects_conflicting_or_malformed_windows(tmp_path: Path, window: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run("audit", "verify", "--data-dir", str(tmp_path), *window)
    assert exited.value.code == 2


def test_checkpoint_prints_the_signed_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path)

    assert run("audit", "checkpoint", "--data-dir", str(tmp_path)) == 0

    out = capsys.readouterr().out
    assert out.startswith("operate-mcp/audit\n4\n")
    assert "\n\n\u2014 operate-mcp-audit " in out


def test_repair_sets_a_torn_tail_aside(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_log(tmp_path)
    with (tmp_path / "audit" / "2026-11-21.jsonl").open("a") as f:
        f.write('{"seq":5')
    assert run("audit", "checkpoint", "--data-dir", str(tmp_path)) == 1
    assert "2026-11-21.jsonl line 3" in capsys.readouterr().err

    assert run("audit", "repair", "--data-dir", str(tmp_path)) == 0
    assert "moved 8 torn bytes from 2026-11-21.jsonl line 3" in capsys.readouterr().out
    assert run("audit", "verify", "--data-dir", str(tmp_path)) == 0


def test_a_missing_public_key_file_is_a_usage_error_not_an_integrity_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A typo in --public-key is the user's mistake, not tampering: exit 2, and no line in the alert log."""
    build_log(tmp_path)
    with pytest.raises(SystemExit) as exited:
        run("audit", "verify", "--data-dir", str(tmp_path), "--public-key", str(tmp_path / "nope.pem"))
    assert exited.value.code == 2
    assert "no such file" in capsys.readouterr().err
    assert not (tmp_path / "alerts" / "audit-integrity.log").exists()
