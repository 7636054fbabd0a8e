"""Fast verification: a checkpointed log is proven from its stored bytes, and every tampering still
gets the same report as the entry-by-entry check."""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.audit import AuditLog, VerifyReport, verify
from operate_mcp.audit.log import canonical_json, entry_hash

verify_module = importlib.import_module("operate_mcp.audit.verify")

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY2, DAY3 = "2026-11-21.jsonl", "2026-11-22.jsonl"
MANIFEST = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "shop"}}


def build_log(data_dir: Path, count: int = 9, per_day: int = 3) -> AuditLog:
    log = AuditLog(data_dir)
    for i in range(count):
        moment = T0 + timedelta(days=i // per_day, minutes=i % per_day)
        log.append("execution.step", actor="alice", data={"step": i + 1, "manifest": MANIFEST},
                   session_id="opr-1", now=moment)
    return log


def lines_of(data_dir: Path, name: str) -> list[bytes]:
    return (data_dir / "audit" / name).read_bytes().splitlines(keepends=True)


def write(data_dir: Path, name: str, lines: list[bytes]) -> None:
    (data_dir / "audit" / name).write_bytes(b"".join(lines))


def both_paths(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[VerifyReport, VerifyReport]:
    """(report with the fast path, report of the entry-by-entry check alone)."""
    fast = verify(data_dir, alert=False)
    with monkeypatch.context() as m:
        m.setattr(verify_module, "_FAST_PATH", False)
        slow = verify(data_dir, alert=False)
    return fast, slow


def stored_line(content: dict[str, object], hashed: bytes | None = None) -> bytes:
    """A line as `append` writes it; `hashed` replaces the bytes the hash is computed over."""
    body = canonical_json(content)
    digest = hashlib.sha256(hashed if hashed is not None else body).hexdigest()
    at = body.rindex(b'"kind":')
    return body[:at] + f'"hash":"{digest}",'.encode() + body[at:] + b"\n"


def test_a_checkpointed_log_is_proven_from_its_stored_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = build_log(tmp_path)
    log.checkpoint()
    log.append("execution", actor="alice", data={"after": "the checkpoint"}, now=T0 + timedelta(days=2, hours=1))
    fast, slow = both_paths(tmp_path, monkeypatch)

    def no_entry_by_entry(scope: object) -> VerifyReport:
        raise AssertionError("a clean, checkpointed log should not need the entry-by-entry check")

    monkeypatch.setattr(verify_module, "_verify_entries", no_entry_by_entry)
    report = verify(tmp_path)

    assert report.ok and report.entries_checked == 10
    assert (report.first_seq, report.last_seq, report.verified_up_to_seq) == (1, 10, 10)
    assert report == fast == slow


def test_a_one_day_window_is_proven_from_its_stored_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_log(tmp_path).checkpoint()
    monkeypatch.setattr(verify_module, "_verify_entries", None)  # would fail if called

    report = verify(tmp_path, days=1, today=T0.date() + timedelta(days=2))

    assert report.ok and report.files == [DAY3] and (report.first_seq, report.last_seq) == (7, 9)


def edit_actor(lines: list[bytes]) -> None:
    entry = json.loads(lines[1])
    entry["actor"] = "mallory"
    lines[1] = canonical_json(entry) + b"\n"


def edit_and_rehash(lines: list[bytes]) -> None:
    entry = json.loads(lines[1])
    entry["data"] = {"step": 500}
    entry["hash"] = entry_hash(entry)
    lines[1] = canonical_json(entry) + b"\n"


def flip_one_hash_digit(lines: list[bytes]) -> None:
    at = lines[1].index(b'"hash":"') + 8
    lines[1] = lines[1][:at] + (b"1" if lines[1][at:at + 1] == b"0" else b"0") + lines[1][at + 1:]


def garbage(lines: list[bytes]) -> None:
    lines[1] = b"garbage\n"


def copy_line(lines: list[bytes]) -> None:
    lines.insert(0, lines[0])


def swap(lines: list[bytes]) -> None:
    lines[0], lines[1] = lines[1], lines[0]


def delete(lines: list[bytes]) -> None:
    del lines[1]


def hash_member_into_the_manifest(lines: list[bytes]) -> None:
    """Same bytes hashed, but the hash now sits inside data: valid JSON, no longer a valid entry."""
    line = lines[1]
    k = line.rindex(b'"kind":')
    member, rest = line[k - 74 : k], line[: k - 74] + line[k:]
    nested = rest.index(b'"kind":"Deployment"')
    lines[1] = rest[:nested] + member + rest[nested:]


def blank_line(lines: list[bytes]) -> None:
    lines.insert(1, b"\n")


def reserialised_with_spaces(lines: list[bytes]) -> None:
    """Same content, other whitespace: not the stored form, but still a valid entry."""
    lines[1] = json.dumps(json.loads(lines[1])).encode() + b"\n"


@pytest.mark.parametrize(
    "tamper",
    [edit_actor, edit_and_rehash, flip_one_hash_digit, garbage, copy_line, swap, delete,
     hash_member_into_the_manifest, blank_line],
)
def test_tampering_a_checkpointed_entry_gets_the_entry_by_entry_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tamper: Callable[[list[bytes]], None]
) -> None:
    build_log(tmp_path).checkpoint()
    lines = lines_of(tmp_path, DAY2)
    tamper(lines)
    write(tmp_path, DAY2, lines)

    fast, slow = both_paths(tmp_path, monkeypatch)

    assert not fast.ok and fast.problems
    assert fast == slow


def test_a_log_not_in_the_stored_form_still_verifies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries re-serialised by another tool (other whitespace) are checked entry by entry, and pass."""
    build_log(tmp_path).checkpoint()
    lines = lines_of(tmp_path, DAY2)
    reserialised_with_spaces(lines)
    write(tmp_path, DAY2, lines)

    fast, slow = both_paths(tmp_path, monkeypatch)

    assert fast.ok and fast == slow


def test_entries_after_the_last_checkpoint_are_parsed_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the newest checkpoint nothing vouches for the bytes: a line whose stored bytes hash
    correctly but that is not JSON must still be reported."""
    log = build_log(tmp_path)
    log.checkpoint()
    last = log.append("execution", actor="alice", data={}, now=T0 + timedelta(days=2, hours=1))
    content = {
        "actor": "mallory", "data": {}, "kind": "execution", "prev_hash": last.hash, "record_id": None,
        "seq": last.seq + 1, "session_id": None, "ts": "2026-11-22T10:00:00.000000Z",
    }
    body = canonical_json(content)
    not_json = body.replace(b'"data":{}', b'"data":{oops}')
    forged = stored_line(content, hashed=not_json).replace(b'"data":{}', b'"data":{oops}')
    follower = {**content, "actor": "alice", "seq": last.seq + 2,
                "prev_hash": hashlib.sha256(not_json).hexdigest()}
    with (tmp_path / "audit" / DAY3).open("ab") as f:
        f.write(forged + stored_line(follower))

    one_by_one = verify_module._checked_one_by_one
    seen: list[bool] = []
    monkeypatch.setattr(verify_module, "_checked_one_by_one",
                        lambda *a: seen.append(one_by_one(*a)) or seen[-1])  # type: ignore[func-returns-value]
    fast, slow = both_paths(tmp_path, monkeypatch)

    assert seen == [False]  # the stored bytes passed; parsing the unvouched entries did not
    assert not fast.ok
    assert (fast.problems[0].kind, fast.problems[0].line) == ("edited", 5)
    assert fast == slow
