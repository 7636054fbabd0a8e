"""The audit log: chained day files, crash safety, locking, signed checkpoints, redaction."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import operate_mcp
from operate_mcp.audit import AuditKeyError, AuditLog, AuditLogCorrupt, verify
from operate_mcp.audit.checkpoint import parse_checkpoints
from operate_mcp.redact import redact

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SRC = str(Path(operate_mcp.__file__).resolve().parents[1])

WRITER = """
import sys
from pathlib import Path
from operate_mcp.audit.log import AuditLog

log = AuditLog(Path(sys.argv[1]))
count = int(sys.argv[2])
i = 0
while count == 0 or i < count:
    log.append("execution.step", actor=sys.argv[3], data={"i": i, "output": "x" * 4000})
    i += 1
"""


def lines_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def all_lines(data_dir: Path) -> list[dict[str, object]]:
    return [e for p in sorted((data_dir / "audit").glob("*.jsonl")) for e in lines_of(p)]


def spawn_writer(tmp_path: Path, data_dir: Path, count: int, actor: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, str(script), str(data_dir), str(count), actor], env=env)


def test_entries_chain_across_day_files(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    written = [
        log.append("proposal", actor="alice", data={"n": i}, session_id="opr-1", now=T0 + timedelta(hours=10 * i))
        for i in range(6)
    ]

    names = sorted(p.name for p in (tmp_path / "audit").glob("*.jsonl"))
    assert names == ["2026-11-20.jsonl", "2026-11-21.jsonl", "2026-11-22.jsonl"]
    stored = all_lines(tmp_path)
    assert [e["seq"] for e in stored] == [1, 2, 3, 4, 5, 6]
    assert stored[0]["prev_hash"] == "0" * 64
    for before, after in itertools.pairwise(stored):
        assert after["prev_hash"] == before["hash"]
    first_of_day2 = lines_of(tmp_path / "audit" / "2026-11-21.jsonl")[0]
    last_of_day1 = lines_of(tmp_path / "audit" / "2026-11-20.jsonl")[-1]
    assert first_of_day2["prev_hash"] == last_of_day1["hash"]
    assert [e.hash for e in written] == [e["hash"] for e in stored]


def test_hash_is_sha256_of_canonical_json_without_the_hash(tmp_path: Path) -> None:
    entry = AuditLog(tmp_path).append("approval", actor="bob", data={"b": 1, "a": "é"}, record_id="run-1", now=T0)

    stored = lines_of(tmp_path / "audit" / "2026-11-20.jsonl")[0]
    content = {k: v for k, v in stored.items() if k != "hash"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert stored["hash"] == hashlib.sha256(canonical).hexdigest() == entry.hash
    assert stored["ts"] == "2026-11-20T09:00:00.000000Z"
    assert (stored["kind"], stored["actor"], stored["record_id"]) == ("approval", "bob", "run-1")


def test_a_clock_going_backwards_still_appends_to_the_newest_file(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("proposal", actor="a", data={}, now=T0 + timedelta(days=1))
    log.append("approval", actor="a", data={}, now=T0)

    assert [p.name for p in (tmp_path / "audit").glob("*.jsonl")] == ["2026-11-21.jsonl"]
    assert verify(tmp_path).ok


def test_naive_timestamps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        AuditLog(tmp_path).append("proposal", actor="a", data={}, now=datetime(2026, 11, 20, 9))


def test_entries_reads_a_date_range(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    for i in range(6):
        log.append("proposal", actor="a", data={"n": i}, now=T0 + timedelta(hours=10 * i))

    middle = list(log.entries(date(2026, 11, 21), date(2026, 11, 21)))
    assert [e.data["n"] for e in middle] == [2, 3]
    assert [e.seq for e in log.entries()] == [1, 2, 3, 4, 5, 6]


def test_a_torn_tail_blocks_appends_until_it_is_repaired(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    for i in range(3):
        log.append("execution.step", actor="a", data={"i": i}, now=T0)
    day_file = tmp_path / "audit" / "2026-11-20.jsonl"
    torn = b'{"actor":"a","data":{"i":3'
    with day_file.open("ab") as f:
        f.write(torn)

    reopened = AuditLog(tmp_path)
    assert reopened.torn_tail is not None
    assert (reopened.torn_tail.file, reopened.torn_tail.line) == ("2026-11-20.jsonl", 4)
    with pytest.raises(AuditLogCorrupt, match=r"2026-11-20\.jsonl line 4") as raised:
        reopened.append("execution.step", actor="a", data={}, now=T0)
    assert (raised.value.file, raised.value.line) == ("2026-11-20.jsonl", 4)
    assert day_file.read_bytes().endswith(torn), "the torn bytes must not be dropped or overwritten"

    repair = reopened.repair_torn_tail(actor="ops", now=T0 + timedelta(minutes=5))

    assert repair is not None and repair.kind == "audit.repair" and repair.seq == 4
    moved = list((tmp_path / "audit").glob("2026-11-20.jsonl.torn-*"))
    assert len(moved) == 1 and moved[0].read_bytes() == torn
    assert repair.data["moved_to"] == moved[0].name
    assert repair.data["sha256"] == hashlib.sha256(torn).hexdigest()
    assert reopened.append("execution.step", actor="a", data={}, now=T0).seq == 5
    assert verify(tmp_path).ok


def test_a_torn_tail_left_by_another_process_is_noticed(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("proposal", actor="a", data={}, now=T0)
    with (tmp_path / "audit" / "2026-11-20.jsonl").open("ab") as f:
        f.write(b'{"seq":2,')

    with pytest.raises(AuditLogCorrupt, match="ends without a newline"):
        log.append("approval", actor="a", data={}, now=T0)


def test_an_invalid_last_line_counts_as_torn(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("proposal", actor="a", data={}, now=T0)
    with (tmp_path / "audit" / "2026-11-20.jsonl").open("ab") as f:
        f.write(b"not json\n")

    with pytest.raises(AuditLogCorrupt, match="line 2 is not a valid audit entry"):
        AuditLog(tmp_path).append("approval", actor="a", data={}, now=T0)


def test_repair_with_nothing_torn_changes_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append("proposal", actor="a", data={}, now=T0)

    assert log.repair_torn_tail() is None
    assert len(all_lines(tmp_path)) == 1


def test_sigkill_during_appends_leaves_a_log_that_verifies_up_to_the_last_complete_entry(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    writer = spawn_writer(tmp_path, data_dir, 0, "killed")
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            files = list((data_dir / "audit").glob("*.jsonl"))
            if sum(p.read_bytes().count(b"\n") for p in files) >= 25:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the writer did not append 25 entries in 30s")
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL

    raw = b"".join(p.read_bytes() for p in sorted((data_dir / "audit").glob("*.jsonl")))
    complete = raw.count(b"\n")
    report = verify(data_dir, alert=False)
    assert report.verified_up_to_seq == complete
    if raw.endswith(b"\n"):
        assert report.ok, report.problems
    else:
        assert [p.kind for p in report.problems] == ["torn_tail"]

    # Make the interrupted write deterministic: half of an entry, as a crash mid-write() leaves it.
    newest = sorted((data_dir / "audit").glob("*.jsonl"))[-1]
    if raw.endswith(b"\n"):
        last_line = newest.read_bytes().splitlines()[-1]
        with newest.open("ab") as f:
            f.write(last_line[: len(last_line) // 2])

    report = verify(data_dir, alert=False)
    assert not report.ok
    assert [p.kind for p in report.problems] == ["torn_tail"]
    assert report.verified_up_to_seq == complete
    assert f"verifies up to seq {complete}" in report.problems[0].message
    assert report.problems[0].file == newest.name


def test_two_processes_appending_at_once_keep_one_valid_chain(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    writers = [spawn_writer(tmp_path, data_dir, 40, name) for name in ("p1", "p2")]
    for w in writers:
        assert w.wait(timeout=60) == 0

    stored = all_lines(data_dir)
    assert [e["seq"] for e in stored] == list(range(1, 81))
    assert sorted(str(e["actor"]) for e in stored).count("p1") == 40
    assert verify(data_dir, alert=False).ok


def test_threads_appending_at_once_keep_one_valid_chain(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)

    def worker(name: str) -> None:
        for i in range(20):
            log.append("execution.step", actor=name, data={"i": i})

    threads = [threading.Thread(target=worker, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert [e["seq"] for e in all_lines(tmp_path)] == list(range(1, 81))
    assert verify(tmp_path, alert=False).ok


def test_signing_key_is_created_with_mode_0600_and_its_public_key_beside_it(tmp_path: Path) -> None:
    AuditLog(tmp_path).checkpoint()

    key = tmp_path / "keys" / "audit-ed25519.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    public = serialization.load_pem_public_key((tmp_path / "keys" / "audit-ed25519.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)


def test_signing_key_location_is_configurable(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "signer.pem"
    AuditLog(tmp_path / "data", signing_key_path=key).checkpoint()

    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "elsewhere" / "signer.pub").exists()
    assert not (tmp_path / "data" / "keys").exists()


def test_a_signing_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.checkpoint()
    key = tmp_path / "keys" / "audit-ed25519.pem"
    key.chmod(0o644)

    with pytest.raises(AuditKeyError, match="chmod 600"):
        log.checkpoint()


def test_checkpoint_is_a_signed_note_over_size_and_last_hash(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    last = [log.append("execution", actor="a", data={"i": i}, now=T0) for i in range(3)][-1]

    checkpoint = log.checkpoint(now=T0 + timedelta(minutes=1))

    body, _, signature_line = checkpoint.note().partition("\n\n")
    lines = body.split("\n")
    assert lines[:3] == ["operate-mcp/audit", "3", base64.b64encode(bytes.fromhex(last.hash)).decode()]
    assert lines[3] == "time 2026-11-20T09:01:00.000000Z"
    assert signature_line.startswith("\u2014 operate-mcp-audit ")
    blob = base64.b64decode(signature_line.split()[2])
    public = serialization.load_pem_public_key((tmp_path / "keys" / "audit-ed25519.pub").read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    public.verify(blob[4:], (body + "\n").encode())  # raises if the signature is wrong
    parsed = parse_checkpoints((tmp_path / "audit" / "checkpoints.log").read_text())
    assert [p.checkpoint for p in parsed] == [checkpoint]


def test_checkpoint_refuses_to_sign_a_truncated_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    for i in range(4):
        log.append("execution", actor="a", data={"i": i}, now=T0)
    log.checkpoint()
    day_file = tmp_path / "audit" / "2026-11-20.jsonl"
    day_file.write_text("".join(day_file.read_text().splitlines(keepends=True)[:2]))

    with pytest.raises(AuditLogCorrupt, match="covers 4 entries but the log now ends at seq 2"):
        AuditLog(tmp_path).checkpoint()


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    AuditLog(tmp_path).append(
        "execution.step",
        actor="alice",
        data={
            "argv": ["kubectl", "--token", "tok-argv-1", "--password=pw-flag-2", "get", "pods"],
            "headers": {"Authorization": "Bearer hdr-bearer-3", "X-Api-Key": "hdr-key-4"},
            "apiKey": "camel-key-5",
            "db": {"password": "nested-pw-6", "url": "postgres://app:url-pw-7@db:5432/app"},
            "output": "curl -H 'Authorization: Bearer out-bearer-8abcdef' ok\n"
            "-----BEGIN OPENSSH PRIVATE KEY-----\npem-body-9\n-----END OPENSSH PRIVATE KEY-----",
            "manifest": {"kind": "Secret", "data": {"tls.crt": "secret-data-10"}},
            "env": "DB_PASSWORD=env-pw-11 client_secret: cs-12",
            "note": "aws key AKIAABCDEFGHIJKLMNOP leaked",
        },
        now=T0,
    )

    raw = (tmp_path / "audit" / "2026-11-20.jsonl").read_text()
    for secret in (
        "tok-argv-1",
        "pw-flag-2",
        "hdr-bearer-3",
        "hdr-key-4",
        "camel-key-5",
        "nested-pw-6",
        "url-pw-7",
        "out-bearer-8",
        "pem-body-9",
        "secret-data-10",
        "env-pw-11",
        "cs-12",
        "AKIAABCDEFGHIJKLMNOP",
    ):
        assert secret not in raw, secret
    assert "[REDACTED]" in raw and "get" in raw
    assert verify(tmp_path).ok


def test_redaction_keeps_what_is_not_secret() -> None:
    data = {"secretName": "db-creds", "input_tokens": 1200, "namespace": "shop", "cmd": ["kubectl", "get", "secret"]}

    assert redact(data) == data
