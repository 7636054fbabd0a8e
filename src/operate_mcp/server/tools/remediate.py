"""remediate over MCP: diagnose a symptom (analyzers first, then the model, citing evidence code has seen)
and propose a fix that is approved and executed exactly like an `operate` proposal.

No `from __future__ import annotations` here: the SDK reads `Resolve(ask_approval)` from the annotation.
"""

from collections.abc import Mapping
from typing import Annotated, Any

from mcp.server.mcpserver import Context, ElicitationResult, MCPServer, Resolve
from mcp_types import ToolAnnotations
from pydantic import Field

from operate_mcp.errors import OperateError
from operate_mcp.governance.approval import ApprovalPending
from operate_mcp.server.app import App
from operate_mcp.server.approval import approval_resolver, approve_then_execute
from operate_mcp.server.errors import OnError, tool
from operate_mcp.server.tools import client_name
from operate_mcp.workflows import remediate as remediation
from operate_mcp.workflows.remediate import RemediateResult

DESCRIPTION = (
    "Diagnose a symptom ('checkout pods keep restarting', 'the api service returns nothing') and propose a fix. "
    "Analyzers in code read the namespace first (crash loops with exit codes and log lines, image pulls, "
    "unschedulable pods, Services without endpoints, ...); the model explains them, citing only lines code "
    "has read. Returns status (active / resolved / not_found), root cause, confidence, evidence, the findings, "
    "and the fix as a session. Run the fix with sessionId+executeChoice=1 after the person approves: the "
    "analyzers then check that each finding is gone."
)
ANNOTATIONS = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True)


def register(mcp: MCPServer, app: App) -> None:
    ask_approval = approval_resolver(app)

    @tool(
        mcp,
        title="Diagnose and fix a Kubernetes application",
        description=DESCRIPTION,
        annotations=ANNOTATIONS,
        on_error=_alert_failure(app),
    )
    async def remediate(
        ctx: Context[Any, Any],
        approval: Annotated[ElicitationResult[Any], Resolve(ask_approval)],
        symptom: Annotated[
            str | None,
            Field(description="What is wrong, in words: 'checkout pods keep restarting'. Starts a diagnosis."),
        ] = None,
        namespace: Annotated[
            str | None, Field(description="The namespace to diagnose (default: the kubeconfig context's).")
        ] = None,
        object: Annotated[
            str | None,
            Field(description="The object the symptom is about, as kind/name (deployment/checkout) or name."),
        ] = None,
        sessionId: Annotated[
            str | None, Field(description="The session of a proposed fix (opr-...), to execute it.")
        ] = None,
        executeChoice: Annotated[
            int | None,
            Field(
                description=(
                    "With sessionId: 1 runs exactly the fix's commands once the person approved, then checks "
                    "that each finding is gone. The only value is 1."
                )
            ),
        ] = None,
    ) -> RemediateResult:
        if sessionId is not None or executeChoice is not None:
            if not sessionId or executeChoice != 1:
                raise OperateError("to run a fix give its sessionId and executeChoice=1")
            if app.sessions.load(sessionId).remediation is None:
                raise OperateError(
                    f"session {sessionId} is not a remediate session; run it with operate(sessionId, executeChoice=1)"
                )
            session = await approve_then_execute(app, ctx, sessionId, approval)
            return remediation.result_of(session, [])
        if not symptom:
            raise OperateError(
                "give a symptom (remediate(symptom='checkout pods keep restarting', namespace='shop')), "
                "or a sessionId with executeChoice=1 to run a proposed fix"
            )
        return await remediation.remediate(
            app.with_provider(required=False),
            symptom,
            namespace=namespace,
            target=object,
            caller=app.caller,
            triggered_by=f"mcp:{client_name(ctx)}",
        )


def _alert_failure(app: App) -> OnError:
    """A failed diagnosis or fix leaves an alert, like a failed operate call; waiting for approval does not."""

    def on_error(exc: OperateError, args: Mapping[str, object]) -> None:
        if isinstance(exc, ApprovalPending):
            return
        step = "remediate-execute" if args.get("executeChoice") is not None else "remediate"
        session_id = args.get("sessionId")
        app.alert(step, str(args.get("symptom") or ""), session_id if isinstance(session_id, str) else None, str(exc))

    return on_error
