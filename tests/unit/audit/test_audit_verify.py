"""Verification: each way of tampering with the log is found, named and located."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.audit import AuditLog, AuditLogCorrupt, verify
from operate_mcp.audit.log import entry_hash

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY1, DAY2, DAY3 = "2026-11-20.jsonl", "2026-11-21.jsonl", "2026-11-22.jsonl"


def build_log(data_dir: Path, count: int = 9, per_day: int = 3) -> AuditLog:
    """`count` entries, `per_day` in each UTC day from 2026-11-20 on."""
    log = AuditLog(data_dir)
    for i in range(count):
        moment = T0 + timedelta(days=i // per_day, minutes=i % per_day)
        log.append("execution.step", actor="alice", data={"step": i + 1}, session_id="opr-1", now=moment)
    return log


def day_file(data_dir: Path, name: str) -> Path:
    return data_dir / "audit" / name


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


def canonical(obj: dict[str, object]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"


def kinds(data_dir: Path, **window: object) -> list[str]:
    return [p.kind for p in verify(data_dir, **window).problems]  # type: ignore[arg-type]


def alerts(data_dir: Path) -> list[str]:
    path = data_dir / "alerts" / "audit-integrity.log"
    return path.read_text().splitlines() if path.exists() else []


def test_a_clean_log_verifies(tmp_path: Path) -> None:
    build_log(tmp_path).checkpoint()

    report = verify(tmp_path)

    assert report.ok and report.problems == []
    assert report.entries_checked == 9
    assert report.files == [DAY1, DAY2, DAY3]
    assert (report.first_seq, report.last_seq, report.verified_up_to_seq) == (1, 9, 9)
    assert report.checkpoints_checked == 1
    assert alerts(tmp_path) == []


def test_an_edited_entry_is_detected(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"  # the hash is left as it was
    lines[1] = canonical(entry)
    write_lines(path, lines)

    report = verify(tmp_path)

    assert not report.ok
    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line, problem.seq) == ("edited", DAY2, 2, 5)
    assert problem.message == "entry seq 5 in 2026-11-21.jsonl line 2 was edited: its hash does not match its content"
    assert report.verified_up_to_seq == 4
    [alert] = alerts(tmp_path)
    assert " edited 2026-11-21.jsonl:2 entry seq 5 in 2026-11-21.jsonl line 2 was edited" in alert


def test_an_edit_with_a_recomputed_hash_breaks_the_link_to_the_next_entry(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    entry = json.loads(lines[1])
    entry["data"] = {"step": 500}
    entry["hash"] = entry_hash(entry)
    lines[1] = canonical(entry)
    write_lines(path, lines)

    [problem] = verify(tmp_path).problems

    assert (problem.kind, problem.file, problem.line, problem.seq) == ("edited", DAY2, 3, 6)
    assert "the chain breaks between seq 5 (line 2) and seq 6 (line 3) in 2026-11-21.jsonl" in problem.message


def test_an_entry_overwritten_with_garbage_is_reported_once(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    lines[1] = "garbage\n"
    write_lines(path, lines)

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line) == ("edited", DAY2, 2)
    assert problem.message == "2026-11-21.jsonl line 2 is not a valid audit entry: it was altered or inserted"
    assert report.verified_up_to_seq == 4


def test_a_copied_line_is_reported(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    write_lines(path, [lines[0], *lines])

    [problem] = verify(tmp_path).problems

    assert (problem.kind, problem.seq) == ("edited", 4)
    assert "entry seq 4 appears twice (2026-11-21.jsonl line 1 and 2026-11-21.jsonl line 2)" in problem.message


def test_swapped_entries_are_reported_as_reordered(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    lines[0], lines[1] = lines[1], lines[0]
    write_lines(path, lines)

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line, problem.seq) == ("reordered", DAY2, 2, 4)
    assert problem.message == (
        "entries seq 5 (line 1) and seq 4 (line 2) in 2026-11-21.jsonl are out of order: seq 4 was moved after seq 5"
    )


def test_a_deleted_entry_is_detected(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY2)
    lines = read_lines(path)
    del lines[1]
    write_lines(path, lines)

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line, problem.seq) == ("deleted", DAY2, 2, 5)
    assert problem.message == (
        "entry seq 5 was deleted: seq 4 (2026-11-21.jsonl line 1) is followed by seq 6 (2026-11-21.jsonl line 2)"
    )
    assert report.verified_up_to_seq == 4


def test_a_deleted_day_file_is_detected(tmp_path: Path) -> None:
    build_log(tmp_path)
    day_file(tmp_path, DAY2).unlink()

    [problem] = verify(tmp_path).problems

    assert (problem.kind, problem.file, problem.line) == ("deleted", DAY3, 1)
    assert problem.message.startswith("entries seq 4-6 were deleted: seq 3 (2026-11-20.jsonl line 3)")


def test_deleting_the_oldest_entries_is_detected(tmp_path: Path) -> None:
    build_log(tmp_path)
    path = day_file(tmp_path, DAY1)
    write_lines(path, read_lines(path)[1:])

    [problem] = verify(tmp_path).problems

    assert problem.kind == "deleted"
    assert problem.message.startswith("entry seq 1 was deleted: the start of the log is followed by seq 2")


def test_a_truncated_log_is_detected_against_the_last_checkpoint(tmp_path: Path) -> None:
    build_log(tmp_path).checkpoint()
    path = day_file(tmp_path, DAY3)
    write_lines(path, read_lines(path)[:1])  # drop seq 8 and 9

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line, problem.seq) == ("truncated", DAY3, 1, 8)
    assert problem.message.startswith("the log ends at seq 7 (2026-11-22.jsonl line 1) but the checkpoint at ")
    assert problem.message.endswith("covers 9 entries: seq 8-9 were removed from the end (truncated)")


def test_truncating_a_whole_day_is_detected_with_a_one_day_window(tmp_path: Path) -> None:
    build_log(tmp_path).checkpoint()
    day_file(tmp_path, DAY3).unlink()

    assert kinds(tmp_path, days=1, today=date(2026, 11, 22)) == ["truncated"]


def test_truncation_after_the_last_checkpoint_is_not_detectable(tmp_path: Path) -> None:
    """A documented limit: entries newer than the last checkpoint can vanish unnoticed."""
    log = build_log(tmp_path)
    log.checkpoint()
    log.append("execution", actor="alice", data={}, now=T0 + timedelta(days=2, hours=1))
    path = day_file(tmp_path, DAY3)
    write_lines(path, read_lines(path)[:-1])

    assert verify(tmp_path).ok


def test_a_rewritten_tail_is_detected_against_the_checkpoint(tmp_path: Path) -> None:
    log = build_log(tmp_path, count=5)
    log.checkpoint()  # tree size 5
    for i in range(4):
        log.append("execution.step", actor="alice", data={"step": 6 + i}, now=T0 + timedelta(days=2, minutes=i))
    log.checkpoint()  # tree size 9
    # Truncate back to seq 5 (checkpointed), then append a fresh, internally valid chain past the checkpoint.
    path = day_file(tmp_path, DAY3)
    write_lines(path, read_lines(path)[:0])
    rewriter = AuditLog(tmp_path)
    for i in range(4):
        rewriter.append("execution.step", actor="mallory", data={"step": 60 + i}, now=T0 + timedelta(days=2))

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line, problem.seq) == ("tail_rewritten", DAY3, 4, 9)
    assert problem.message.startswith("entry seq 9 in 2026-11-22.jsonl line 4 does not match the checkpoint at")
    assert problem.message.endswith("the log was rewritten after seq 5, the last checkpoint that still matches")
    assert report.verified_up_to_seq == 5
    with pytest.raises(AuditLogCorrupt, match=r"entry seq 9 .* no longer matches the last signed checkpoint"):
        rewriter.checkpoint()


def test_a_torn_last_line_is_reported_and_the_rest_verifies(tmp_path: Path) -> None:
    build_log(tmp_path)
    with day_file(tmp_path, DAY3).open("a") as f:
        f.write('{"actor":"alice","data":{"st')

    report = verify(tmp_path)

    [problem] = report.problems
    assert (problem.kind, problem.file, problem.line) == ("torn_tail", DAY3, 4)
    assert "ends without a newline: a write was interrupted; the log verifies up to seq 9" in problem.message
    assert report.verified_up_to_seq == 9 and report.entries_checked == 9


def test_a_one_day_window_checks_the_link_to_the_previous_day(tmp_path: Path) -> None:
    build_log(tmp_path)
    assert verify(tmp_path, date=date(2026, 11, 21)).ok
    # Rewrite the last entry of day 1 with a recomputed hash: day 1 alone still looks intact.
    path = day_file(tmp_path, DAY1)
    lines = read_lines(path)
    entry = json.loads(lines[-1])
    entry["data"] = {"step": 300}
    entry["hash"] = entry_hash(entry)
    lines[-1] = canonical(entry)
    write_lines(path, lines)

    assert verify(tmp_path, date=date(2026, 11, 20)).ok
    [problem] = verify(tmp_path, date=date(2026, 11, 21)).problems
    assert (problem.kind, problem.file, problem.line) == ("edited", DAY2, 1)
    assert "seq 3 (the last entry of 2026-11-20.jsonl, line 3) and seq 4 (2026-11-21.jsonl line 1)" in problem.message


def test_windows_select_day_files(tmp_path: Path) -> None:
    build_log(tmp_path)

    assert verify(tmp_path, days=1, today=date(2026, 11, 22)).files == [DAY3]
    assert verify(tmp_path, days=2, today=date(2026, 11, 22)).files == [DAY2, DAY3]
    assert verify(tmp_path, from_date=date(2026, 11, 20), to_date=date(2026, 11, 21)).files == [DAY1, DAY2]
    with pytest.raises(ValueError, match="choose one"):
        verify(tmp_path, date=date(2026, 11, 20), days=1)


def test_a_forged_checkpoint_signature_is_detected(tmp_path: Path) -> None:
    build_log(tmp_path).checkpoint()
    path = tmp_path / "audit" / "checkpoints.log"
    path.write_text(path.read_text().replace("\n9\n", "\n7\n", 1))  # claim a smaller tree

    [problem] = verify(tmp_path).problems

    assert (problem.kind, problem.file, problem.line) == ("bad_signature", "checkpoints.log", 1)
    assert "tree size 7) has a signature that does not verify" in problem.message


def test_a_missing_public_key_is_reported(tmp_path: Path) -> None:
    build_log(tmp_path).checkpoint()
    (tmp_path / "keys" / "audit-ed25519.pub").unlink()

    assert kinds(tmp_path) == ["missing_checkpoint_key"]


def test_a_pinned_public_key_outside_the_data_dir_is_used(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build_log(data_dir).checkpoint()
    pinned = tmp_path / "pinned.pub"
    pinned.write_bytes((data_dir / "keys" / "audit-ed25519.pub").read_bytes())
    (data_dir / "keys" / "audit-ed25519.pem").unlink()
    (data_dir / "keys" / "audit-ed25519.pub").unlink()
    AuditLog(data_dir).checkpoint()  # an attacker's new key signs a second checkpoint

    report = verify(data_dir, public_key_path=pinned)

    assert [(p.kind, p.line) for p in report.problems] == [("bad_signature", 8)]  # the second note


def test_every_problem_is_one_alert_line(tmp_path: Path) -> None:
    build_log(tmp_path)
    for name in (DAY1, DAY2):
        path = day_file(tmp_path, name)
        lines = read_lines(path)
        lines[0] = lines[0].replace('"actor":"alice"', '"actor":"eve"')
        write_lines(path, lines)

    verify(tmp_path)

    lines = alerts(tmp_path)
    assert len(lines) == 2
    stamp, kind, where, *_ = lines[1].split(" ")
    assert datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
    assert (kind, where) == ("edited", "2026-11-21.jsonl:1")
