"""Secret values never reach the agent, the session or the records: not via -o on mutating commands,
not via cut kubectl output, not via values on the command line."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.config import Settings
from operate_mcp.kube.classifier import classify
from operate_mcp.kube.runner import CommandResult, Kubectl, cap
from operate_mcp.kube.tools import JSON_GET_OUTPUT_CAP, MAX_TOOL_OUTPUT, GetArgs, ToolBox, _render
from operate_mcp.model.command import Classification, CommandClass, ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.model.session import CommandOutcome, Session, SessionStatus
from operate_mcp.model.usage import TokenUsage
from operate_mcp.redact import redact, redact_text
from operate_mcp.workflows.decision import render
from operate_mcp.workflows.dryrun import dry_run
from operate_mcp.workflows.recording import record_from_session

SECRET_VALUE = "c3VwZXItc2VjcmV0LXZhbHVlLTEyMzQ="  # base64 of a password-like value
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def secret(name: str, value: str = SECRET_VALUE) -> dict[str, Any]:
    # kubectl prints `data` before `metadata`, so a cut listing leaks values before it shows names.
    return {
        "apiVersion": "v1",
        "data": {"password": value, "dburl": value},
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "shop"},
        "type": "Opaque",
    }


class FakeKubectl(Kubectl):
    """Answers every command with fixed stdout, honouring the output cap as the real runner does."""

    def __init__(self, tmp_path: Path, stdout: str) -> None:
        super().__init__(Settings(data_dir=tmp_path))
        self.stdout = stdout
        self.calls: list[tuple[list[str], int | None]] = []

    def run(  # type: ignore[override]
        self,
        argv: Any,
        *,
        stdin: str | None = None,
        timeout: float | None = None,
        output_cap: int | None = None,
        redact: bool = True,
    ) -> CommandResult:
        self.calls.append((list(argv), output_cap))
        out, cut = cap(self.stdout, output_cap or self.output_cap)
        return CommandResult(argv=list(argv), exit_code=0, stdout=out, stderr="", duration_seconds=0.1, truncated=cut)


# ----------------------------------------------------------------------------- A: -o on mutating commands


@pytest.mark.parametrize(
    "argv",
    [
        ["kubectl", "annotate", "secret", "db", "-n", "x", "note=y", "-o", "json"],
        ["kubectl", "annotate", "secret", "db", "-n", "x", "note=y", "-o", "json", "--dry-run=server"],
        ["kubectl", "label", "secret", "db", "a=b", "-o=yaml"],
        ["kubectl", "patch", "secret", "db", "-p", "{}", "-o", "jsonpath={.data.password}"],
        ["kubectl", "set", "env", "deploy/web", "A=b", "-o", "go-template={{.spec}}"],
        ["kubectl", "apply", "-f", "-", "--template={{.data}}", "-o", "go-template"],
    ],
)
def test_output_flags_on_mutating_commands_are_forbidden(argv: list[str]) -> None:
    verdict = classify(argv)
    assert verdict.command_class is CommandClass.FORBIDDEN
    assert "read with kubectl get" in verdict.reason


def test_output_flags_on_reads_stay_allowed() -> None:
    assert classify(["kubectl", "get", "secret", "db", "-o", "json"]).command_class is CommandClass.READ
    assert classify(["kubectl", "get", "pods", "-o", "jsonpath={.items}"]).command_class is CommandClass.READ


def test_a_dry_run_of_an_annotate_with_output_never_runs_and_never_returns_data(tmp_path: Path) -> None:
    kubectl = FakeKubectl(tmp_path, json.dumps(secret("db")))
    cmd = ProposedCommand(argv=["kubectl", "annotate", "secret", "db", "-n", "x", "note=y", "-o", "json"],
                          description="x")
    result = dry_run(kubectl, cmd, 1)
    assert not result.ok and "forbidden" in result.error
    assert kubectl.calls == []
    assert SECRET_VALUE not in result.model_dump_json()


def test_dry_run_output_goes_through_the_structured_redactor(tmp_path: Path) -> None:
    # Defence in depth: whatever a dry run prints, only kubectl's result lines are kept, never object data.
    kubectl = FakeKubectl(tmp_path, json.dumps(secret("db")))
    cmd = ProposedCommand(argv=["kubectl", "apply", "-f", "-"], stdin=json.dumps(secret("db")), description="x")
    result = dry_run(kubectl, cmd, 1)
    assert SECRET_VALUE not in result.model_dump_json()
    assert "withheld" in result.output


# ----------------------------------------------------------------------------- B: cut Secret listings


def big_secret_list(count: int = 150) -> str:
    items = [secret(f"s-{i:03d}", base64.b64encode(f"value-{i:03d}-".encode() * 64).decode()) for i in range(count)]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {}}, indent=4)


def test_a_cut_secret_listing_is_withheld_not_passed_raw() -> None:
    raw = big_secret_list()
    capped, cut = cap(raw, 64_000)
    assert cut
    args = GetArgs(resource="secrets", namespace="shop")
    result = CommandResult(argv=["kubectl", "get", "secrets", "-n", "shop", "-o", "json"], exit_code=0,
                           stdout=capped, stderr="", duration_seconds=0.1, truncated=True)
    text = _render(args, result)
    assert "value-" not in text and base64.b64encode(b"value-000-").decode()[:12] not in text
    assert "withheld" in text


def test_a_large_secret_listing_is_stripped_then_capped(tmp_path: Path) -> None:
    raw = big_secret_list()
    assert len(raw) > 64_000
    kubectl = FakeKubectl(tmp_path, raw)
    text, call = ToolBox(kubectl).call("kube_get", {"resource": "secrets", "namespace": "shop"})
    assert call.ok
    assert kubectl.calls[0][1] == JSON_GET_OUTPUT_CAP
    encoded_values = {json.loads(raw)["items"][i]["data"]["password"] for i in range(150)}
    assert not any(v[:16] in text for v in encoded_values)
    assert "s-000" in text and "[REDACTED]" in text
    assert len(text) < MAX_TOOL_OUTPUT + 1_000


def test_a_json_get_of_another_kind_is_read_whole_too(tmp_path: Path) -> None:
    kubectl = FakeKubectl(tmp_path, json.dumps({"kind": "ConfigMap", "metadata": {"name": "c"}}))
    ToolBox(kubectl).call("kube_get", {"resource": "configmap", "name": "c", "output": "json"})
    ToolBox(kubectl).call("kube_get", {"resource": "pods"})
    assert [c[1] for c in kubectl.calls] == [JSON_GET_OUTPUT_CAP, None]


# ----------------------------------------------------------------------------- C: values on the command line


def test_secret_values_on_create_secret_are_forbidden() -> None:
    for flag in ("--from-literal=db-url=postgres://app:s3cr3t@db/x", "--from-file=./creds", "--from-env-file=.env"):
        verdict = classify(["kubectl", "create", "secret", "generic", "x", flag])
        assert verdict.command_class is CommandClass.FORBIDDEN, flag
    verdict = classify(["kubectl", "create", "secret", "generic", "x", "--from-literal=a=b"])
    assert "stdin" in verdict.reason


@pytest.mark.parametrize("arg", ["DB_PASS=hunter22", "DB_PASSWORD=hunter22", "X_PWD=hunter22", "db_passwd=hunter22"])
def test_the_audit_redactor_masks_password_like_env_values(arg: str) -> None:
    assert "hunter22" not in redact_text(arg)
    assert "hunter22" not in json.dumps(redact(["kubectl", "set", "env", "deploy/x", arg]))


ENV_ARGV = ["kubectl", "set", "env", "deploy/x", "DB_PASS=hunter22", "-n", "shop"]
LITERAL_ARGV = ["kubectl", "create", "secret", "generic", "x", "--from-literal=db-url=postgres://app:s3cr3t@db/x"]


def leaky_session() -> Session:
    commands = [
        CheckedCommand(
            command=ProposedCommand(argv=argv, description="x"),
            display=" ".join(argv),
            classification=Classification(command_class=CommandClass.MUTATING, reason="changes"),
        )
        for argv in (ENV_ARGV, LITERAL_ARGV)
    ]
    proposal = Proposal(
        version=1,
        intent="set the db password",
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=commands,
        risk=RiskAssessment(tier=RiskTier.LOW, reasons=["env"]),
        digest=command_digest([c.command for c in commands]),
        iterations=1,
        token_usage=TokenUsage(),
        prompt_sha256="a" * 64,
        provider="scripted",
    )
    return Session(
        id="opr-1772366400000-0badc0de",
        created_at=T0,
        expires_at=T0 + timedelta(hours=1),
        status=SessionStatus.EXECUTED_SUCCESSFULLY,
        intent="set the db password",
        caller="alice",
        triggered_by="mcp",
        proposal=proposal,
        outcomes=[
            CommandOutcome(index=1, argv=ENV_ARGV, exit_code=0, duration_seconds=0.1,
                           stdout="deployment.apps/x env updated", stderr=""),
            CommandOutcome(index=2, argv=LITERAL_ARGV, exit_code=1, duration_seconds=0.1,
                           stdout=json.dumps(secret("x")), stderr="error: postgres://app:s3cr3t@db/x"),
        ],
        finished_at=T0 + timedelta(seconds=2),
    )


def test_decision_records_mask_secret_values_in_argv_and_display() -> None:
    text = render(leaky_session())
    assert "hunter22" not in text and "s3cr3t" not in text
    assert "DB_PASS=" in text and "postgres://app:" in text


def test_execution_records_mask_secret_values_in_argv_and_outputs() -> None:
    record = record_from_session(leaky_session())
    dumped = record.model_dump_json()
    assert "hunter22" not in dumped and "s3cr3t" not in dumped and SECRET_VALUE not in dumped
    assert record.commands[0].argv[4] == "DB_PASS=[REDACTED]"
