"""The MCP server: one App shared by every toolset, each registering its own tools."""

from __future__ import annotations

from collections.abc import Callable

from mcp.server.mcpserver import MCPServer

from operate_mcp import __version__
from operate_mcp.config import Settings
from operate_mcp.identity import os_user
from operate_mcp.server.app import App, ProviderFactory, default_provider
from operate_mcp.server.http import add_metrics_route
from operate_mcp.server.tools import anomalies, audit, cluster, knowledge, operate, remediate, replay, runs

INSTRUCTIONS = """operate-mcp operates Kubernetes applications safely.
Call `operate` with a natural-language intent; it returns a proposal with the exact kubectl
commands, their server-side dry-run results, a rollback plan and a risk tier, stored in a
session. Call `remediate` with a symptom to diagnose what is wrong (evidence cited line by
line) and get a fix as the same kind of proposal. Show proposals to the person. Execution
needs their approval."""

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
    app = App(settings, caller=caller or os_user(), provider_factory=provider_factory)
    app.start_retention()
    mcp = MCPServer(name="operate-mcp", version=__version__, instructions=INSTRUCTIONS)
    for register in TOOLSETS:
        register(mcp, app)
    add_metrics_route(mcp, app)
    if warm_up:  # last: registering the tools is CPU work that tools/list waits for
        app.start_warm_up()
    return mcp
