"""The MCP server: one App shared by every toolset, each registering its own tools."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.mcpserver import MCPServer

from operate_mcp.config import Settings
from operate_mcp.identity import os_user
from operate_mcp.server.app import App, ProviderFactory, default_provider
from operate_mcp.server.catalog import new_server
from operate_mcp.server.http import add_metrics_route
from operate_mcp.server.tools import anomalies, audit, cluster, knowledge, operate, remediate, replay, runs

TOOLSETS: tuple[Callable[[MCPServer, App], None], ...] = (
    operate.register,
    remediate.register,
    cluster.register,  # only when read_only_tools is true
    replay.register,
    knowledge.register,
    runs.register,
    audit.register,
    anomalies.register,
)


def create_server(
    settings: Settings,
    *,
    provider_factory: ProviderFactory = default_provider,
    caller: str | None = None,
    warm_up: bool = False,
) -> MCPServer:
    """`caller` is who the agent acts for: the OS user on stdio, the configured http_user over HTTP.
    `warm_up` (the `serve` command) loads the embedding model in the background right away."""
    mcp = new_server()
    register_tools(mcp, settings, provider_factory=provider_factory, caller=caller, warm_up=warm_up)
    return mcp


def register_tools(
    mcp: MCPServer,
    settings: Settings,
    *,
    provider_factory: ProviderFactory = default_provider,
    caller: str | None = None,
    warm_up: bool = False,
) -> App:
    """Build the App and register every toolset onto `mcp`: at once (`create_server`), or once the
    catalog has answered the first `tools/list` (`serve` over stdio, server/catalog.py)."""
    app = App(settings, caller=caller or os_user(), provider_factory=provider_factory)
    app.start_retention()
    for register in TOOLSETS:
        register(mcp, app)
    add_metrics_route(mcp, app)
    if warm_up:  # last: registering the tools is CPU work that tools/list waits for
        app.start_warm_up()
    return app
