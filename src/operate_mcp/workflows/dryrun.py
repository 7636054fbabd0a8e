"""Server-side dry-run of one proposed command, exactly as written, by our code."""

from __future__ import annotations

from operate_mcp.audit.redact import redact_text
from operate_mcp.errors import CommandRejected
from operate_mcp.kube.commands import ProposedCommand, with_server_dry_run
from operate_mcp.kube.runner import Kubectl
from operate_mcp.workflows.proposal import DryRunResult


def dry_run(kubectl: Kubectl, command: ProposedCommand, index: int) -> DryRunResult:
    try:
        argv = with_server_dry_run(command.argv)
    except CommandRejected as exc:
        return DryRunResult(command_index=index, argv=command.argv, ok=False, output="", error=str(exc))
    result = kubectl.run(argv, stdin=command.stdin)
    # The classifier refuses output flags on mutating commands, so stdout is a result line; the
    # structured redactor (Secret JSON/YAML, URL credentials) is the second line of defence.
    stdout = redact_text(result.stdout).strip()
    stderr = redact_text(result.stderr).strip()
    return DryRunResult(
        command_index=index,
        argv=argv,
        ok=result.ok,
        output=stdout,
        error="" if result.ok else (stderr or stdout or f"exit {result.exit_code}"),
    )
