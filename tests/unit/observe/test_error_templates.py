"""Error templates (observe/templates.py): a new error pattern is told from a known one across instances,
runs and processes; variable parts are masked; the state file is plain JSON that is validated, never
unpickled, and a hostile, corrupt or huge one is set aside safely; the number of templates is capped."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import string
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonpickle  # type: ignore[import-untyped]  # only to prove the hostile payload below is live
import pytest

from operate_mcp.observe import templates as templates_module
from operate_mcp.observe.templates import MAX_FILE_BYTES, ErrorTemplates, mask


def state(data_dir: Path) -> dict[str, int]:
    """The templates file as template -> count."""
    doc = json.loads((data_dir / "observe" / "templates.json").read_text())
    return {t["template"]: t["count"] for t in doc["templates"]}


def word(i: int) -> str:
    """A distinct lowercase word per number: aaa, aab, ... (no digits, so no mask touches it)."""
    letters, i = "", i + 26 * 26
    while i:
        letters, i = string.ascii_lowercase[i % 26] + letters, i // 26
    return letters


def test_variable_parts_are_masked() -> None:
    assert mask("connect to 10.0.0.1 failed") == mask("connect to 10.0.0.2 failed") == "connect to <IP> failed"
    assert mask('user "bob" can\'t open \'cfg.yaml\'') == "user <STR> can't open <STR>"
    assert mask("request 7f3a9c2e-1b2d-4c5e-8f90-123456789abc took 12ms") == "request <UUID> took <NUM>"
    assert mask("bad pointer 0xdeadBEEF in a3f9c2d1e8") == "bad pointer <HEX> in <HEX>"
    assert mask("dial 10.0.3.4:9090 from pod web-7d9f8b6c5-x2k4q") == "dial <IP> from pod <NUM>"


def test_masking_a_hostile_line_costs_time_linear_in_its_length() -> None:
    hostile = ['"' * 100_000, "'a" * 50_000, "0" * 100_000, "a1-" * 50_000, "1." * 100_000, "0x" * 100_000,
               '"\\' * 50_000, "f" * 100_000 + "1"]
    start = time.process_time()
    for line in hostile:
        mask(line)
    assert time.process_time() - start < 0.5


def test_a_pattern_is_new_once_then_known_to_another_instance_on_the_same_data_dir(tmp_path: Path) -> None:
    first = ErrorTemplates(tmp_path).observe([
        "connect to 10.0.0.1 failed", "connect to 10.0.0.2 failed", "disk full on volume data",
    ])
    assert [(t.template, t.count, t.new) for t in first] == [
        ("connect to <IP> failed", 2, True),
        ("disk full on volume data", 1, True),
    ]
    second = ErrorTemplates(tmp_path).observe(["connect to 10.9.9.9 failed", "permission denied for table orders"])
    assert [(t.template, t.count, t.new) for t in second] == [
        ("permission denied for table orders", 1, True),  # new ones first
        ("connect to <IP> failed", 1, False),
    ]
    assert state(tmp_path) == {
        "connect to <IP> failed": 3,
        "disk full on volume data": 1,
        "permission denied for table orders": 1,
    }


def test_a_known_template_that_generalizes_stays_known(tmp_path: Path) -> None:
    ErrorTemplates(tmp_path).observe(["user alice not found"])
    (again,) = ErrorTemplates(tmp_path).observe(["user bob not found"])
    assert (again.template, again.new) == ("user <*> not found", False)
    assert state(tmp_path) == {"user <*> not found": 2}


def test_the_same_instance_remembers_between_calls(tmp_path: Path) -> None:
    templates = ErrorTemplates(tmp_path)
    assert [t.new for t in templates.observe(["queue jobs is full"])] == [True]
    assert [t.new for t in templates.observe(["queue jobs is full"])] == [False]


def test_nothing_to_observe_touches_nothing(tmp_path: Path) -> None:
    assert ErrorTemplates(tmp_path).observe(["", "   "]) == []
    assert not (tmp_path / "observe").exists()


def test_the_cap_forgets_the_least_recently_seen(tmp_path: Path) -> None:
    templates = ErrorTemplates(tmp_path, max_clusters=5)
    for i in range(8):
        templates.observe([f"{word(i)} subsystem failed"])
    assert sorted(state(tmp_path)) == sorted(f"{word(i)} subsystem failed" for i in range(3, 8))
    (old,) = ErrorTemplates(tmp_path, max_clusters=5).observe([f"{word(0)} subsystem failed"])
    assert old.new  # forgotten, so new again
    (recent,) = ErrorTemplates(tmp_path, max_clusters=5).observe([f"{word(7)} subsystem failed"])
    assert not recent.new


def test_the_default_cap_is_a_thousand(tmp_path: Path) -> None:
    found = ErrorTemplates(tmp_path).observe([f"{word(i)} subsystem failed" for i in range(1200)])
    assert len(found) == 1200 and all(t.new for t in found)
    assert len(state(tmp_path)) == 1000


HOSTILE = {
    "jsonpickle reduce": lambda marker: json.dumps(
        {"py/reduce": [{"py/function": "builtins.open"}, {"py/tuple": [str(marker), "w"]}]}
    ),
    "jsonpickle object in an entry": lambda marker: json.dumps({"version": 1, "templates": [
        {"py/reduce": [{"py/function": "builtins.open"}, {"py/tuple": [str(marker), "w"]}]},
    ]}),
    "garbage": lambda marker: "\x00\xff not json at all {{{",
    "truncated": lambda marker: '{"version": 1, "templates": [{"template": "x", "cou',
    "wrong types": lambda marker: json.dumps({"version": 1, "templates": [
        {"template": "x", "count": "7", "first_seen": "2026-11-30T12:00:00Z", "last_seen": "2026-11-30T12:00:00Z"},
    ]}),
    "unknown version": lambda marker: json.dumps({"version": 2, "templates": []}),
    "nested a million deep": lambda marker: "[" * 1_000_000 + "]" * 1_000_000,
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_or_corrupt_file_is_refused_and_replaced(
    kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "data" / "observe" / "templates.json"
    path.parent.mkdir(parents=True)
    path.write_text(HOSTILE[kind](marker))
    templates = ErrorTemplates(tmp_path / "data")
    with caplog.at_level(logging.WARNING, logger="operate_mcp.observe.templates"):
        assert templates.known() == []
        (found,) = templates.observe(["connect to 10.0.0.1 failed"])
    assert found.new
    assert not marker.exists()
    assert "is not a valid templates file" in caplog.text
    assert state(tmp_path / "data") == {"connect to <IP> failed": 1}


def test_the_jsonpickle_payload_is_live_so_refusing_it_matters(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    jsonpickle.decode(HOSTILE["jsonpickle reduce"](marker))  # what drain3's own persistence would do
    assert marker.exists()


def test_a_huge_file_is_not_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "observe" / "templates.json"
    path.parent.mkdir()
    with path.open("w") as fh:
        fh.write('{"version": 1, "templates": [' + " " * (MAX_FILE_BYTES + 1) + "]}")
    with caplog.at_level(logging.WARNING):
        assert ErrorTemplates(tmp_path).known() == []
    assert "is not a regular file of at most" in caplog.text


def test_a_symlink_or_a_fifo_in_its_place_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "observe").mkdir()
    secret = tmp_path / "elsewhere.json"
    secret.write_text(json.dumps({"version": 1, "templates": []}))
    (tmp_path / "observe" / "templates.json").symlink_to(secret)
    with caplog.at_level(logging.WARNING):
        assert ErrorTemplates(tmp_path).known() == []
    assert "cannot be read" in caplog.text
    (tmp_path / "observe" / "templates.json").unlink()
    os.mkfifo(tmp_path / "observe" / "templates.json")
    assert ErrorTemplates(tmp_path).known() == []  # returns at once: a FIFO is not waited on


def test_while_another_holds_the_lock_it_answers_and_does_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    ErrorTemplates(tmp_path).observe(["disk full on volume data"])
    monkeypatch.setattr(templates_module, "LOCK_TIMEOUT_SECONDS", 0.2)
    fd = os.open(tmp_path / "observe" / "templates.lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with caplog.at_level(logging.WARNING):
            found = ErrorTemplates(tmp_path).observe(["disk full on volume data", "queue jobs is full"])
    finally:
        os.close(fd)
    assert [(t.template, t.new) for t in found] == [("queue jobs is full", True), ("disk full on volume data", False)]
    assert "is held by another process" in caplog.text
    assert state(tmp_path) == {"disk full on volume data": 1}


def test_two_processes_observing_at_once_lose_nothing(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from operate_mcp.observe.templates import ErrorTemplates
        data_dir, who = Path(sys.argv[1]), sys.argv[2]
        for n in range(15):
            letters = "".join("abcdefghijklmnopqrstuvwxyz"[int(d)] for d in f"{n:02d}")
            ErrorTemplates(data_dir).observe([f"{who} {letters} broke", "shared pool exhausted"])
    """)
    workers = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path), who]) for who in ("alpha", "beta")]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    known = state(tmp_path)
    assert len(known) == 31  # 15 of each worker's own, and the shared one
    assert known["shared pool exhausted"] == 30
    assert known["alpha ab broke"] == known["beta be broke"] == 1
