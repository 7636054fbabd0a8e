"""The MCP tools, one module per toolset, each declaring its tools with their annotations in `register(mcp, app)`.

Here: what several toolsets share about a request.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp_types import ToolAnnotations

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True, openWorldHint=False)


def client_name(ctx: Context[Any, Any]) -> str:
    """The MCP client program's own name for itself (what it says, not proven)."""
    try:
        params = ctx.request_context.session.client_params
        return params.client_info.name if params is not None else "unknown"
    except AttributeError:
        return "unknown"


def progress(ctx: Context[Any, Any]) -> Callable[[int, int, str], Awaitable[None]]:
    """A use case's progress callback, reported to the client as MCP progress notifications."""

    async def report(step: int, total: int, message: str) -> None:
        await ctx.report_progress(step, total, message)

    return report
