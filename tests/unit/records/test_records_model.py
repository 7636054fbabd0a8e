"""Execution records built from executed sessions: status mapping, redaction, caps, what search filters on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.model.command import Classification, CommandClass, ProposedCommand, command_digest
from operate_mcp.model.proposal import (
    CheckedCommand,
    DryRunResult,
    ObservedObject,
    PolicyCheck,
    Proposal,
    ProposedChanges,
    RiskAssessment,
    RiskTier,
)
from operate_mcp.model.session import (
    Approval,
    Check,
    CommandOutcome,
    Executor,
    Session,
    SessionStatus,
    StatusChange,
    Validation,
)
from operate_mcp.model.usage import TokenUsage
from operate_mcp.records.models import (
    OUTPUT_CAP_CHARS,
    RECORD_ID,
    ExecutionRecord,
    RecordError,
    RunStatus,
    cap_text,
    new_record_id,
)
from operate_mcp.workflows.recording import record_from_session

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SCALE = ["kubectl", "scale", "deployment/api", "--replicas=5", "-n", "shop"]
ROLLOUT = ["kubectl", "rollout", "status", "deployment/api", "-n", "shop"]


def checked(argv: list[str], dry_ok: bool | None) -> CheckedCommand:
    cmd = ProposedCommand(argv=argv, description="x")
    return CheckedCommand(
        command=cmd,
        display=" ".join(argv),
        classification=Classification(command_class=CommandClass.MUTATING, reason="changes the cluster"),
        dry_run=None if dry_ok is None else DryRunResult(command_index=1, argv=argv, ok=dry_ok, output=""),
    )


def session(
    status: SessionStatus = SessionStatus.EXECUTED_WITH_ERRORS,
    *,
    purpose: str = "operate",
    outcomes: list[CommandOutcome] | None = None,
    checks: list[Check] | None = None,
) -> Session:
    commands = [checked(SCALE, True), checked(ROLLOUT, None)]
    proposal = Proposal(
        version=2,
        intent="scale api to 5",
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=commands,
        risk=RiskAssessment(tier=RiskTier.LOW, reasons=["scale"]),
        patterns_applied=["pat-scale"],
        policies_checked=[PolicyCheck(policy_id="pol-replicas", name="max replicas", passed=True)],
        observed_objects=[ObservedObject(kind="Deployment", name="api", namespace="shop", exists=True)],
        digest=command_digest([c.command for c in commands]),
        iterations=1,
        token_usage=TokenUsage(input_tokens=100, output_tokens=20, cache_creation_input_tokens=5,
                               cache_read_input_tokens=70),
        prompt_sha256="a" * 64,
        provider="scripted",
    )
    if outcomes is None:
        outcomes = [
            CommandOutcome(index=1, argv=SCALE, exit_code=0, duration_seconds=0.4,
                           stdout="deployment.apps/api scaled\ntoken: abcd1234efgh", stderr=""),
            CommandOutcome(index=2, argv=ROLLOUT, exit_code=1, duration_seconds=120.0, stdout="",
                           stderr="Waiting for rollout\nerror: timed out waiting for the condition"),
        ]
    return Session(
        id="opr-1772366400000-0badc0de",
        created_at=T0 - timedelta(minutes=5),
        expires_at=T0 + timedelta(hours=1),
        status=status,
        intent="scale api to 5",
        caller="alice",
        triggered_by="mcp:claude-code",
        proposal=proposal,
        approvals=[Approval(approver="bob", at=T0, method="cli", digest=proposal.digest, version=2, tier="low")],
        parent_session="opr-1772366000000-00000001" if purpose != "operate" else None,
        purpose=purpose,
        executor=Executor(pid=1, host="h", started_at=T0),
        outcomes=outcomes,
        validation=Validation(checks=checks or [], model_verdict=None),
        finished_at=T0 + timedelta(seconds=121),
        history=[StatusChange(at=T0, from_status=SessionStatus.APPROVED, to_status=SessionStatus.EXECUTING,
                              actor="alice")],
    )


def test_record_ids_sort_by_start_time_and_have_the_documented_shape() -> None:
    first, second = new_record_id(T0), new_record_id(T0 + timedelta(milliseconds=1))

    assert RECORD_ID.match(first) and first.startswith("run-1772366400000-")
    assert first[:17] < second[:17]


def test_executed_with_errors_becomes_partial_with_the_failing_step_and_error() -> None:
    record = record_from_session(session())

    assert record.status is RunStatus.PARTIAL
    assert record.failed_step == "kubectl rollout status deployment/api -n shop"
    assert record.error == "exit 1: error: timed out waiting for the condition"
    assert record.started_at == T0 and record.duration_seconds == 121.0
    assert record.triggered_by == "mcp:claude-code" and record.caller == "alice"
    assert record.session_id == "opr-1772366400000-0badc0de" and record.proposal_version == 2


def test_search_fields_come_from_the_objects_the_proposal_touches() -> None:
    record = record_from_session(session())

    assert record.namespaces == ["shop"]
    assert record.resources == ["deployment/api"]


def test_hashes_usage_and_approvers_are_kept_for_replay_and_cost() -> None:
    record = record_from_session(session(), pattern_hashes={"pat-scale": "b" * 64}, tags=["ci"])

    assert record.prompt_sha256 == "a" * 64
    assert record.patterns[0].id == "pat-scale" and record.patterns[0].sha256 == "b" * 64
    assert record.policies[0].id == "pol-replicas" and record.policies[0].sha256 is None
    assert record.token_usage.model_dump() == {"input": 100, "output": 20, "cache_write": 5, "cache_read": 70}
    assert record.metadata["approvers"] == ["bob"] and record.metadata["risk_tier"] == "low"
    assert record.tags == ["ci"]


def test_command_output_is_redacted_and_dry_run_results_are_attached() -> None:
    record = record_from_session(session())

    assert "abcd1234efgh" not in record.commands[0].stdout and "[REDACTED]" in record.commands[0].stdout
    assert record.commands[0].dry_run_ok is True and record.commands[1].dry_run_ok is None


def test_long_output_keeps_head_and_tail_within_the_cap() -> None:
    text = "HEAD " + "x" * 50_000 + " TAIL"
    capped = cap_text(text)

    assert len(capped) < OUTPUT_CAP_CHARS + 100
    assert capped.startswith("HEAD") and capped.endswith("TAIL") and "characters cut" in capped


@pytest.mark.parametrize(
    ("status", "purpose", "expected"),
    [
        (SessionStatus.EXECUTED_SUCCESSFULLY, "operate", RunStatus.SUCCEEDED),
        (SessionStatus.EXECUTED_WITH_ERRORS, "operate", RunStatus.PARTIAL),
        (SessionStatus.FAILED, "operate", RunStatus.FAILED),
        (SessionStatus.INTERRUPTED, "operate", RunStatus.INTERRUPTED),
        (SessionStatus.EXECUTED_SUCCESSFULLY, "rollback", RunStatus.ROLLED_BACK),
        (SessionStatus.FAILED, "rollback", RunStatus.FAILED),
        (SessionStatus.EXECUTED_SUCCESSFULLY, "replay", RunStatus.SUCCEEDED),
    ],
)
def test_session_status_maps_to_run_status(status: SessionStatus, purpose: str, expected: RunStatus) -> None:
    record = record_from_session(session(status, purpose=purpose))

    assert record.status is expected
    assert record.purpose == purpose
    if purpose != "operate":
        assert purpose in record.tags and record.parent_id == "opr-1772366000000-00000001"


@pytest.mark.parametrize("status", [SessionStatus.PROPOSED, SessionStatus.APPROVED, SessionStatus.REJECTED,
                                    SessionStatus.EXPIRED])
def test_sessions_that_never_ran_do_not_become_records(status: SessionStatus) -> None:
    with pytest.raises(RecordError, match="only executed sessions"):
        record_from_session(session(status))


def test_a_failed_validation_check_is_the_failed_step_when_every_command_passed() -> None:
    ok = [CommandOutcome(index=1, argv=SCALE, exit_code=0, duration_seconds=0.4, stdout="", stderr="")]
    checks = [Check(name="rollout", ok=True), Check(name="pods-ready", ok=False, detail="0/5 ready\nCrashLoopBackOff")]

    record = record_from_session(session(SessionStatus.FAILED, outcomes=ok, checks=checks))

    assert record.failed_step == "check:pods-ready" and record.error == "CrashLoopBackOff"
    assert [c.name for c in record.outcome_checks] == ["rollout", "pods-ready"]


def test_an_interrupted_run_names_the_step_it_never_finished() -> None:
    s = session(SessionStatus.INTERRUPTED, outcomes=[
        CommandOutcome(index=1, argv=SCALE, exit_code=0, duration_seconds=0.4, stdout="", stderr="")])
    s.history.append(StatusChange(at=T0 + timedelta(seconds=3), from_status=SessionStatus.EXECUTING,
                                  to_status=SessionStatus.INTERRUPTED, actor="system",
                                  note="executor pid 42 died after 1 of 2 commands"))
    s.finished_at = None

    record = record_from_session(s)

    assert record.failed_step == "kubectl rollout status deployment/api -n shop"
    assert record.error == "executor pid 42 died after 1 of 2 commands"
    assert record.finished_at == T0 + timedelta(seconds=3)


def test_records_round_trip_through_json_and_naive_times_are_utc() -> None:
    record = ExecutionRecord(id=new_record_id(T0), started_at=datetime(2026, 3, 1, 12), triggered_by="cli",
                             caller="alice", intent="x", status=RunStatus.SUCCEEDED, tags=["a", "a", "b"])

    assert record.started_at.tzinfo is UTC and record.tags == ["a", "b"]
    assert ExecutionRecord.model_validate_json(record.model_dump_json()) == record


def test_a_malformed_id_is_refused() -> None:
    with pytest.raises(ValueError, match="id"):
        ExecutionRecord(id="run-1; DROP", started_at=T0, triggered_by="cli", caller="a", intent="x",
                        status=RunStatus.FAILED)


def test_record_execution_saves_alerts_and_counts(tmp_path: Path) -> None:
    from operate_mcp.records.alerts import FailureAlerts
    from operate_mcp.records.prometheus import RunMetrics
    from operate_mcp.records.store import RecordStore
    from operate_mcp.workflows.recording import record_execution

    store, metrics = RecordStore(tmp_path), RunMetrics()
    record = record_execution(session(SessionStatus.FAILED), store=store, alerts=FailureAlerts(tmp_path),
                              metrics=metrics, tags=["ci"])

    assert store.get(record.id) == record and record.tags == ["ci"]
    assert f"id={record.id} status=failed" in (tmp_path / "alerts" / "intent-failures.log").read_text()
    assert b'operate_mcp_executions_total{purpose="operate",status="failed"} 1.0' in metrics.render()


def test_a_broken_alert_log_does_not_lose_the_record(tmp_path: Path) -> None:
    from operate_mcp.records.alerts import FailureAlerts
    from operate_mcp.records.store import RecordStore
    from operate_mcp.workflows.recording import record_execution

    (tmp_path / "alerts").write_text("a file where the directory should be")
    store = RecordStore(tmp_path)

    record = record_execution(session(SessionStatus.FAILED), store=store, alerts=FailureAlerts(tmp_path))

    assert store.get(record.id).status is RunStatus.FAILED
