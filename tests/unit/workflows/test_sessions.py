"""Session store: atomic files, no path traversal, TTL, and a state machine that cannot be skipped."""

from __future__ import annotations

import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta

import pytest

from operate_mcp.errors import SessionError
from operate_mcp.model.command import ProposedCommand, command_digest
from operate_mcp.model.proposal import Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.model.session import SessionStatus, check_session_id
from operate_mcp.workflows.sessions import SessionStore

S = SessionStatus


def make_proposal(version: int = 1) -> Proposal:
    cmds = [
        ProposedCommand(argv=["kubectl", "scale", "deployment/api", "--replicas=5", "-n", "shop"], description="scale")
    ]
    return Proposal(
        version=version,
        intent="scale api",
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=[],
        risk=RiskAssessment(tier=RiskTier.LOW, reasons=["scale by 2"]),
        digest=command_digest(cmds),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )


@pytest.fixture
def store(tmp_path):
    return SessionStore(tmp_path, ttl_seconds=3600)


def new(store):
    return store.create(intent="scale api", caller="alice", triggered_by="cli", proposal=make_proposal())


def test_session_id_has_the_documented_shape_and_round_trips(store):
    s = new(store)
    assert check_session_id(s.id) == s.id
    assert store.load(s.id).proposal.digest == s.proposal.digest


def test_session_file_is_private(store):
    s = new(store)
    mode = stat.S_IMODE(os.stat(store.dir / f"{s.id}.json").st_mode)
    assert mode == 0o600


@pytest.mark.parametrize(
    "bad", ["../../etc/passwd", "opr-1/../../x", "opr-123-abcdefgh", "", "opr-1767225600000-1A2B3C4D"]
)
def test_ids_that_could_escape_the_directory_are_refused(store, bad):
    with pytest.raises(SessionError, match="not a session id"):
        store.load(bad)


def test_write_is_atomic_no_temp_files_left_and_old_content_survives_a_failed_write(store, monkeypatch):
    s = new(store)
    before = (store.dir / f"{s.id}.json").read_text()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.transition(s.id, S.APPROVED, actor="bob")
    monkeypatch.undo()
    assert (store.dir / f"{s.id}.json").read_text() == before
    assert not list(store.dir.glob("*.tmp"))


def test_state_machine_allows_the_documented_path(store):
    s = new(store)
    for to in (S.APPROVED, S.EXECUTING, S.EXECUTED_SUCCESSFULLY):
        s = store.transition(s.id, to, actor="bob")
    assert [h.to_status for h in s.history] == [S.PROPOSED, S.APPROVED, S.EXECUTING, S.EXECUTED_SUCCESSFULLY]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), S.EXECUTING),
        ((S.APPROVED, S.EXECUTING), S.APPROVED),
        ((S.APPROVED, S.EXECUTING, S.FAILED), S.EXECUTING),
        ((S.REJECTED,), S.APPROVED),
    ],
)
def test_illegal_transitions_are_refused(store, path, illegal):
    s = new(store)
    for to in path:
        store.transition(s.id, to, actor="bob")
    with pytest.raises(SessionError, match="cannot go from"):
        store.transition(s.id, illegal, actor="bob")


def test_only_one_of_two_concurrent_callers_moves_a_session_to_executing(store):
    s = new(store)
    store.transition(s.id, S.APPROVED, actor="bob")
    wins: list[str] = []
    errors: list[str] = []

    def go(name: str) -> None:
        try:
            store.transition(s.id, S.EXECUTING, actor=name, expected={S.APPROVED})
            wins.append(name)
        except SessionError as exc:
            errors.append(str(exc))

    threads = [threading.Thread(target=go, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(errors) == 7
    assert all("is executing, not approved" in e for e in errors)


def test_expired_session_cannot_be_approved_and_says_when_it_expired(store):
    s = new(store)
    path = store.dir / f"{s.id}.json"
    data = json.loads(path.read_text())
    data["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    path.write_text(json.dumps(data))
    with pytest.raises(SessionError, match=r"expired at .* analyse again with operate\(intent='scale api'\)"):
        store.transition(s.id, S.APPROVED, actor="bob")
    assert store.load(s.id).status is S.EXPIRED


def test_hand_edited_garbage_is_reported_not_crashed_on(store):
    s = new(store)
    (store.dir / f"{s.id}.json").write_text("{not json")
    with pytest.raises(SessionError, match="unreadable or was altered"):
        store.load(s.id)
    assert store.list() == []


def test_a_session_whose_ttl_ends_while_executing_still_finishes(store):
    s = new(store)
    store.transition(s.id, S.APPROVED, actor="bob")
    store.transition(s.id, S.EXECUTING, actor="bob")
    path = store.dir / f"{s.id}.json"
    data = json.loads(path.read_text())
    data["expires_at"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    path.write_text(json.dumps(data))
    done = store.transition(s.id, S.EXECUTED_SUCCESSFULLY, actor="bob")
    assert done.status is S.EXECUTED_SUCCESSFULLY
