"""The one place a domain error becomes an MCP tool error.

The SDK shows a `ToolError`'s text to the client and turns anything else into a bare "Error
executing tool X". Every tool is registered through `tool()`, which applies `tool_errors`, so no
tool can forget the mapping and lose an actionable message.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import ParamSpec, TypeAlias, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations

from operate_mcp import tracing
from operate_mcp.errors import OperateError

P = ParamSpec("P")
R = TypeVar("R")
Handler: TypeAlias = Callable[P, Awaitable[R]]
OnError = Callable[[OperateError, Mapping[str, object]], None]
"""A side effect of a failed call (an alert), given the error and the tool's arguments."""


def tool_errors(on_error: OnError | None = None) -> Callable[[Handler[P, R]], Handler[P, R]]:
    """OperateError -> ToolError (the client shows its text); anything else stays a crash. Each call is the
    server span of its trace (tracing.py; the exporter is set up here, at registration, before any request)."""
    tracing.configure()

    def wrap(fn: Handler[P, R]) -> Handler[P, R]:
        @functools.wraps(fn)  # MCPServer reads the signature through __wrapped__
        async def handler(*args: P.args, **kwargs: P.kwargs) -> R:
            with tracing.tool_call(fn.__name__) as span:
                try:
                    return await fn(*args, **kwargs)
                except OperateError as exc:
                    span.record_exception(exc)
                    if on_error is not None:
                        on_error(exc, kwargs)
                    raise ToolError(str(exc)) from exc

        return handler

    return wrap


def tool(
    mcp: MCPServer,
    *,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    on_error: OnError | None = None,
) -> Callable[[Handler[P, R]], Handler[P, R]]:
    """Register the decorated function as an MCP tool, its OperateErrors mapped to ToolErrors."""

    def register(fn: Handler[P, R]) -> Handler[P, R]:
        mcp.tool(title=title, description=description, annotations=annotations)(tool_errors(on_error)(fn))
        return fn

    return register
