"""operate over MCP: analyse an intent, refine it, execute it once the person approves, roll it back.

No `from __future__ import annotations` here: the SDK reads `Resolve(ask_approval)` from the
annotation, and `ask_approval` is a closure over the App.
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
from operate_mcp.server.tools import client_name, progress
from operate_mcp.workflows.operate import analyze
from operate_mcp.workflows.response import OperateResponse, to_response
from operate_mcp.workflows.rollback import propose_rollback

DESCRIPTION = (
    "Turn an intent (update, scale, autoscale, make HA, roll back, delete) into a validated proposal: "
    "analysis, current state, changes, exact kubectl commands with server-side dry-run results, rollback "
    "commands, risk tier, session id. Refine with sessionId+refinedIntent. Execute with "
    "sessionId+executeChoice=1: the person approves (asked directly where the client supports it), then "
    "exactly the proposed commands run and are validated. Undo an execution with sessionId+rollback=1."
)
ANNOTATIONS = ToolAnnotations(readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=True)


def register(mcp: MCPServer, app: App) -> None:
    ask_approval = approval_resolver(app)

    @tool(
        mcp,
        title="Operate a Kubernetes application",
        description=DESCRIPTION,
        annotations=ANNOTATIONS,
        on_error=alert_failure(app),
    )
    async def operate(
        ctx: Context[Any, Any],
        approval: Annotated[ElicitationResult[Any], Resolve(ask_approval)],
        intent: Annotated[
            str | None,
            Field(
                description=(
                    "What to do, in words: 'scale api in shop to 5', 'roll back checkout'. Starts a new analysis."
                )
            ),
        ] = None,
        sessionId: Annotated[
            str | None, Field(description="The session of a proposal (opr-...), to refine, execute or roll back it.")
        ] = None,
        refinedIntent: Annotated[
            str | None,
            Field(
                description=(
                    "With sessionId: what to change in the proposal; makes a new version that needs approval again."
                )
            ),
        ] = None,
        executeChoice: Annotated[
            int | None,
            Field(
                description=(
                    "With sessionId: 1 runs exactly the proposed commands once the person approved (they "
                    "are asked where the client supports it). The only value is 1."
                )
            ),
        ] = None,
        rollback: Annotated[
            int | None,
            Field(
                description=(
                    "With the sessionId of an executed session: 1 proposes undoing it (a new session, "
                    "approved and run the same way). The only value is 1."
                )
            ),
        ] = None,
    ) -> OperateResponse:
        trigger = f"mcp:{client_name(ctx)}"
        if executeChoice is not None or rollback is not None:
            if not sessionId:
                raise OperateError("executeChoice and rollback need the sessionId of a proposal")
            if executeChoice is not None and executeChoice != 1:
                raise OperateError("executeChoice=1 is the only choice: run the proposal's commands")
            if rollback is not None:
                if rollback != 1:
                    raise OperateError("rollback=1 proposes undoing an executed session")
                session = await propose_rollback(app.deps, sessionId, caller=app.caller, triggered_by=trigger)
            else:
                session = await approve_then_execute(app, ctx, sessionId, approval)
        elif sessionId and refinedIntent:
            session = await analyze(
                app.with_provider(required=True),
                "",
                caller=app.caller,
                triggered_by=trigger,
                refine_session=sessionId,
                refined_intent=refinedIntent,
                on_progress=progress(ctx),
            )
        elif intent:
            session = await analyze(
                app.with_provider(required=True),
                intent,
                caller=app.caller,
                triggered_by=trigger,
                on_progress=progress(ctx),
            )
        else:
            raise OperateError(
                "give an intent (operate(intent='scale api in shop to 5')), or a sessionId with "
                "refinedIntent, executeChoice=1 or rollback=1"
            )
        record_id = session.extra.get("record_id")
        found = app.anomalies.for_run(record_id) if isinstance(record_id, str) else []
        return to_response(session, found)


def alert_failure(app: App) -> OnError:
    """Every failed operate call leaves an alert naming the step that failed; a session waiting for a
    person's approval has not failed, so no team is paged for a routine approval."""

    def on_error(exc: OperateError, args: Mapping[str, object]) -> None:
        if isinstance(exc, ApprovalPending):
            return
        step = "rollback" if args.get("rollback") else "execute" if args.get("executeChoice") is not None else "analyse"
        intent = args.get("intent") or args.get("refinedIntent") or ""
        session_id = args.get("sessionId")
        app.alert(step, str(intent), session_id if isinstance(session_id, str) else None, str(exc))

    return on_error
