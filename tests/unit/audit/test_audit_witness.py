"""Audit witnesses: checkpoints copied where the data dir's writer cannot rewrite them, so deleting
checkpoints.log, or the newest entries together with the checkpoints that cover them, no longer
verifies clean."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.audit import AuditLog, verify
from operate_mcp.audit.checkpoint import (
    AuditWitnessError,
    CheckpointWitness,
    load_or_create_signing_key,
    sign_checkpoint,
    witness_file,
)
from operate_mcp.audit.cli import add_audit_parser
from operate_mcp.audit.log import format_ts

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY1, DAY2, DAY3 = "2026-11-20.jsonl", "2026-11-21.jsonl", "2026-11-22.jsonl"
NO_SYSLOG = {"syslog_address": None}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def witness_dir(tmp_path: Path) -> Path:
    path = tmp_path / "witness"  # stands in for another mount the data dir's writer can only append to
    path.mkdir()
    return path


def witnessed_log(data_dir: Path, witness_dir: Path | None, days: int = 3) -> AuditLog:
    """Three entries a day, and a checkpoint at the end of each day (tree sizes 3, 6, 9)."""
    log = AuditLog(data_dir, witness=CheckpointWitness(witness_dir, **NO_SYSLOG))
    for day in range(days):
        for i in range(3):
            moment = T0 + timedelta(days=day, minutes=i)
            log.append("execution.step", actor="alice", data={"step": 3 * day + i + 1}, now=moment)
        log.checkpoint(now=T0 + timedelta(days=day, hours=1))
    return log


def checkpoints(data_dir: Path) -> Path:
    return data_dir / "audit" / "checkpoints.log"


def drop_last_note(path: Path) -> None:
    """Cut the newest signed note from a checkpoints file, as an intruder would."""
    text = path.read_text()
    path.write_text(text[: text.rfind("operate-mcp/audit\n")])


def kinds(data_dir: Path, **options: object) -> list[str]:
    return [p.kind for p in verify(data_dir, **options).problems]  # type: ignore[arg-type]


# -- writing the witness copies -------------------------------------------------------------------------


def test_every_checkpoint_is_appended_to_the_witness_directory(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, witness_dir)

    copy = witness_file(witness_dir)
    assert copy.name == f"{socket.gethostname()}-checkpoints.log"
    assert copy.read_text() == checkpoints(data_dir).read_text()
    assert copy.read_text().count("operate-mcp/audit\n") == 3


def test_an_unwritable_witness_is_an_error_after_the_local_checkpoint(data_dir: Path, tmp_path: Path) -> None:
    log = AuditLog(data_dir, witness=CheckpointWitness(tmp_path / "not-mounted", **NO_SYSLOG))
    log.append("execution", actor="alice", data={}, now=T0)

    with pytest.raises(AuditWitnessError, match=r"not-mounted/.*-checkpoints.log .*checkpoints.log only"):
        log.checkpoint(now=T0)
    assert checkpoints(data_dir).read_text().startswith("operate-mcp/audit\n1\n")


def test_checkpoints_also_go_to_syslog(data_dir: Path, tmp_path: Path) -> None:
    address = tmp_path / "log"
    sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sink.bind(str(address))
    sink.settimeout(5)
    try:
        log = AuditLog(data_dir, witness=CheckpointWitness(syslog_address=str(address)))
        log.append("execution", actor="alice", data={}, now=T0)
        signed = log.checkpoint(now=T0)
        line = sink.recv(65536).decode()
    finally:
        sink.close()

    assert "operate-mcp-audit: checkpoint tree_size=1 " in line and f"root={signed.root_hash}" in line
    assert base64.b64decode(line.rsplit("note=", 1)[1].strip("\x00\n")).decode() == signed.note()


def test_syslog_is_best_effort(data_dir: Path, tmp_path: Path) -> None:
    log = AuditLog(data_dir, witness=CheckpointWitness(syslog_address=str(tmp_path / "no-such-socket")))
    log.append("execution", actor="alice", data={}, now=T0)
    log.checkpoint(now=T0)  # no syslog listening: nothing raised, the local checkpoint is written

    assert verify(data_dir).ok


# -- plain verify: a signing key without checkpoints ----------------------------------------------------


def test_a_deleted_checkpoints_log_is_reported(data_dir: Path) -> None:
    witnessed_log(data_dir, None)
    checkpoints(data_dir).unlink()

    [problem] = verify(data_dir).problems

    assert (problem.kind, problem.file) == ("checkpoints_deleted", "checkpoints.log")
    assert problem.message.startswith("checkpoints.log is missing but the signing key ")
    assert "audit-ed25519.pem exists, so checkpoints were signed" in problem.message


def test_an_emptied_checkpoints_log_is_reported(data_dir: Path) -> None:
    witnessed_log(data_dir, None)
    checkpoints(data_dir).write_text("")

    assert kinds(data_dir) == ["checkpoints_deleted"]


def test_a_log_never_checkpointed_verifies_as_before(data_dir: Path) -> None:
    log = AuditLog(data_dir, witness=CheckpointWitness(**NO_SYSLOG))
    log.append("execution", actor="alice", data={}, now=T0)

    report = verify(data_dir)

    assert report.ok and report.witness is None and report.witness_checkpoints_checked == 0


# -- verify against the witness --------------------------------------------------------------------------


def test_deleting_the_newest_day_with_its_checkpoint_verifies_clean_without_a_witness(
    data_dir: Path, witness_dir: Path
) -> None:
    """The attack the witness is for: a consistent, shorter log and checkpoints.log."""
    witnessed_log(data_dir, witness_dir)
    (data_dir / "audit" / DAY3).unlink()
    drop_last_note(checkpoints(data_dir))

    assert verify(data_dir).ok


def test_deleting_the_newest_day_with_its_checkpoint_is_found_with_the_witness(
    data_dir: Path, witness_dir: Path
) -> None:
    witnessed_log(data_dir, witness_dir)
    (data_dir / "audit" / DAY3).unlink()
    drop_last_note(checkpoints(data_dir))

    report = verify(data_dir, witness=witness_dir)

    assert not report.ok
    by_kind = {p.kind: p for p in report.problems}
    assert sorted(by_kind) == ["checkpoint_missing", "truncated"]
    host_copy = witness_file(witness_dir).name
    assert by_kind["checkpoint_missing"].message.startswith(
        f"1 checkpoint the witness {host_copy} holds is missing from checkpoints.log (tree size 9; the newest signed "
        "2026-11-22T10:00:00.000000Z)"
    )
    truncated = by_kind["truncated"]
    assert (truncated.file, truncated.line, truncated.seq) == (DAY2, 3, 7)
    assert truncated.message == (
        f"the log ends at seq 6 ({DAY2} line 3) but the witness's checkpoint at {host_copy} line 15 (signed "
        "2026-11-22T10:00:00.000000Z) covers 9 entries: seq 7-9 were removed from the end (truncated)"
    )
    assert report.witness == str(witness_file(witness_dir)) and report.witness_checkpoints_checked == 3


def test_a_deleted_checkpoints_log_is_restorable_from_the_witness(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, witness_dir)
    checkpoints(data_dir).unlink()

    assert sorted(kinds(data_dir, witness=witness_dir)) == ["checkpoint_missing", "checkpoints_deleted"]
    checkpoints(data_dir).write_bytes(witness_file(witness_dir).read_bytes())
    assert verify(data_dir, witness=witness_dir).ok


def test_a_rewritten_witness_entry_is_reported(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, witness_dir)
    copy = witness_file(witness_dir)
    copy.write_text(copy.read_text().replace("\n6\n", "\n5\n", 1))  # claim a smaller tree at line 8

    [problem] = verify(data_dir, witness=witness_dir).problems

    assert (problem.kind, problem.file, problem.line) == ("bad_signature", copy.name, 8)
    assert f"checkpoint at {copy.name} line 8 (tree size 5) has a signature that does not verify" in problem.message


def test_checkpoints_re_signed_over_a_rewritten_log_disagree_with_the_witness(
    data_dir: Path, witness_dir: Path
) -> None:
    """An intruder with the signing key rewrites the last day and re-signs checkpoints.log to match."""
    witnessed_log(data_dir, witness_dir)
    day3 = data_dir / "audit" / DAY3
    day3.write_text("")
    forger = AuditLog(data_dir, witness=CheckpointWitness(**NO_SYSLOG))
    for i in range(3):
        forger.append("execution.step", actor="mallory", data={"step": 70 + i}, now=T0 + timedelta(days=2))
    drop_last_note(checkpoints(data_dir))
    forger.checkpoint(now=T0 + timedelta(days=2, hours=2))
    assert verify(data_dir).ok  # consistent without the witness

    problems = verify(data_dir, witness=witness_dir).problems

    assert sorted(p.kind for p in problems) == ["checkpoint_rewritten", "tail_rewritten"]
    rewritten = next(p for p in problems if p.kind == "tail_rewritten")
    assert (rewritten.file, rewritten.seq) == (DAY3, 9)
    assert "does not match the witness's checkpoint at" in rewritten.message
    assert rewritten.message.endswith("the log was rewritten after seq 6, the last checkpoint that still matches")


def test_a_re_signed_checkpoint_is_named_against_the_witness_copy(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, witness_dir)
    key = load_or_create_signing_key(data_dir / "keys" / "audit-ed25519.pem")
    forged = sign_checkpoint(key, 9, "ab" * 32, format_ts(T0 + timedelta(days=2, hours=1)))
    drop_last_note(checkpoints(data_dir))
    with checkpoints(data_dir).open("a") as f:
        f.write(forged.note() + "\n")

    problems = verify(data_dir, witness=witness_dir).problems

    rewritten = [p for p in problems if p.kind == "checkpoint_rewritten"]
    assert len(rewritten) == 1 and (rewritten[0].file, rewritten[0].line) == ("checkpoints.log", 15)
    assert "differs from the witness's copy at" in rewritten[0].message


def test_a_second_root_appended_to_the_witness_is_reported(data_dir: Path, witness_dir: Path) -> None:
    """The witness is append-only, not read-only: an intruder can add a note but not remove the first."""
    witnessed_log(data_dir, witness_dir)
    key = load_or_create_signing_key(data_dir / "keys" / "audit-ed25519.pem")
    forged = sign_checkpoint(key, 9, "cd" * 32, format_ts(T0 + timedelta(days=3)))
    with witness_file(witness_dir).open("a") as f:
        f.write(forged.note() + "\n")

    problems = verify(data_dir, witness=witness_dir).problems

    assert "checkpoint_rewritten" in [p.kind for p in problems]
    assert any("holds checkpoints with different roots for tree size 9 (lines 15 and 22)" in p.message
               for p in problems)


def test_a_missing_witness_copy_is_reported(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, None)

    [problem] = verify(data_dir, witness=witness_dir).problems

    assert problem.kind == "witness_unavailable"
    assert problem.message.startswith(f"the witness has no copy at {witness_file(witness_dir)}")


def test_a_witness_file_from_another_host_can_be_named_directly(data_dir: Path, witness_dir: Path) -> None:
    witnessed_log(data_dir, witness_dir)
    elsewhere = witness_dir / "web-1-checkpoints.log"
    witness_file(witness_dir).rename(elsewhere)

    report = verify(data_dir, witness=elsewhere)

    assert report.ok and report.witness == str(elsewhere) and report.witness_checkpoints_checked == 3


# -- the command line -----------------------------------------------------------------------------------


def run(*argv: str) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="operate-mcp")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, witness_dir: Path) -> None:
    monkeypatch.delenv("OPERATE_MCP_CONFIG", raising=False)
    monkeypatch.setenv("OPERATE_MCP_AUDIT_WITNESS_DIR", str(witness_dir))


@pytest.mark.usefixtures("env")
def test_cli_checkpoint_writes_the_configured_witness(
    data_dir: Path, witness_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    AuditLog(data_dir).append("execution", actor="alice", data={}, now=T0)

    assert run("audit", "checkpoint", "--data-dir", str(data_dir)) == 0

    assert witness_file(witness_dir).read_text() == capsys.readouterr().out + "\n"


@pytest.mark.usefixtures("env")
def test_cli_verify_uses_the_configured_witness_and_reports_in_json(
    data_dir: Path, witness_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    witnessed_log(data_dir, witness_dir)
    assert run("audit", "verify", "--data-dir", str(data_dir)) == 0
    assert f"3 checkpoints, 3 witnessed in {witness_file(witness_dir)}" in capsys.readouterr().out
    (data_dir / "audit" / DAY3).unlink()
    drop_last_note(checkpoints(data_dir))

    assert run("audit", "verify", "--data-dir", str(data_dir), "--format", "json") == 1

    report = json.loads(capsys.readouterr().out)
    assert {"ok", "entries_checked", "files", "problems", "checkpoints_checked", "first_seq", "last_seq",
            "verified_up_to_seq", "window_from", "window_to"} <= set(report)  # the fields it always had
    assert report["witness"] == str(witness_file(witness_dir)) and report["witness_checkpoints_checked"] == 3
    assert sorted(p["kind"] for p in report["problems"]) == ["checkpoint_missing", "truncated"]


def test_cli_verify_witness_flag_names_a_directory(
    data_dir: Path, witness_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("OPERATE_MCP_CONFIG", raising=False)
    monkeypatch.delenv("OPERATE_MCP_AUDIT_WITNESS_DIR", raising=False)
    witnessed_log(data_dir, witness_dir)
    checkpoints(data_dir).unlink()

    assert run("audit", "verify", "--data-dir", str(data_dir), "--witness", str(witness_dir)) == 1
    out = capsys.readouterr().out
    assert "checkpoints_deleted" in out and "checkpoint_missing" in out
    with pytest.raises(SystemExit) as exited:
        run("audit", "verify", "--data-dir", str(data_dir), "--witness")
    assert exited.value.code == 2
    assert "--witness without a directory needs OPERATE_MCP_AUDIT_WITNESS_DIR" in capsys.readouterr().err
