"""The audit log over MCP: verify its hash chain and signed checkpoints."""

from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from operate_mcp.audit.verify import VerifyReport, verify
from operate_mcp.errors import OperateError
from operate_mcp.server.app import App
from operate_mcp.server.errors import tool
from operate_mcp.server.tools import READ_ONLY


def register(mcp: MCPServer, app: App) -> None:
    settings = app.settings

    @tool(
        mcp,
        title="Verify the audit log",
        description=(
            "Check the hash chain and signed checkpoints of the audit log (all of it, or the last N days): detects "
            "edited, reordered, deleted and truncated entries and a rewritten tail, and says where."
        ),
        annotations=READ_ONLY,
    )
    async def audit_verify(
        days: Annotated[int | None, Field(description="Verify only the last N days (default: all of the log).")] = None,
    ) -> VerifyReport:
        if days is not None and days < 1:
            raise OperateError("days must be 1 or more")
        return await anyio.to_thread.run_sync(
            lambda: verify(settings.data_dir, days=days, witness=settings.audit_witness_dir)
        )
