"""replay over MCP: a past operation rebuilt from the verified audit log as a new session to approve."""

from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from operate_mcp.server.app import App
from operate_mcp.server.errors import tool
from operate_mcp.server.tools import client_name
from operate_mcp.workflows.replay import ReplayPlan, parse_overrides, plan_replay
from operate_mcp.workflows.replay import replay as replay_session
from operate_mcp.workflows.response import OperateResponse, to_response


class ReplayResult(BaseModel):
    plan: ReplayPlan
    session: OperateResponse | None


def register(mcp: MCPServer, app: App) -> None:
    @tool(
        mcp,
        title="Replay a past operation",
        description=(
            "Rebuild a past operation (record id run-... or session id opr-...) from the verified audit log as a NEW "
            "session that needs "
            "approval again: the same commands dry-run against the cluster as it is now, or with freshContext=true "
            "a new analysis of the same intent. dryRun=true only shows what would be replayed. Overrides: "
            "intent=..., namespace=.... Warns when the prompt changed since."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=False, idempotentHint=False, openWorldHint=True
        ),
    )
    async def replay(
        ctx: Context[Any, Any],
        id: Annotated[str, Field(description="The execution record (run-...) or session (opr-...) to replay.")],
        dryRun: Annotated[bool, Field(description="Only show what would be replayed; create no session.")] = False,
        freshContext: Annotated[
            bool,
            Field(description="Analyse the intent again with the model instead of re-using the recorded commands."),
        ] = False,
        overrides: Annotated[
            list[str] | None, Field(description="KEY=VALUE changes: intent=... or namespace=....")
        ] = None,
    ) -> ReplayResult:
        deps = app.with_provider(required=freshContext)
        plan = plan_replay(deps, id, parse_overrides(overrides or []))
        if dryRun:
            return ReplayResult(plan=plan, session=None)
        session = await replay_session(
            deps, plan, caller=app.caller, triggered_by=f"mcp:{client_name(ctx)}", fresh_context=freshContext
        )
        return ReplayResult(plan=plan, session=to_response(session))
