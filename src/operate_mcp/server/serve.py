"""`operate-mcp serve`: stdio starts from the tool catalog (server/catalog.py), HTTP registers at once.

Kept light on purpose: `operate-mcp serve` imports this module and the SDK, and nothing of the use
cases, before it answers `tools/list` (bench/cold_start.py measures it); cli.py imports it for the
arguments alone, so even the SDK loads only in `serve`.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from typing import TYPE_CHECKING

from operate_mcp.config import Settings, load_settings

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)


def serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    if args.transport == "stdio":
        # lazy: the SDK; cli.py imports this module for its arguments alone
        from operate_mcp.server.catalog import Catalog, StartingServer

        tools = Catalog.load().listed(read_only_tools=settings.read_only_tools)
        StartingServer(tools, partial(_register, settings=settings)).run("stdio")
        return 0
    # lazy: a long-running HTTP server registers everything before it listens; start-up time is no concern there
    import uvicorn

    from operate_mcp.server.create import create_server
    from operate_mcp.server.http import http_app

    # Over HTTP the caller is whoever holds the token, not the OS user running the server.
    mcp = create_server(settings, caller=settings.http_user, warm_up=True)
    app = http_app(mcp, settings, args.host)
    base = f"http://{f'[{args.host}]' if ':' in args.host else args.host}:{args.port}"
    # stderr: a person starting the server sees where to point the client; stdout stays clean.
    print(f"serving MCP at {base}/mcp (Prometheus metrics at {base}/metrics)", file=sys.stderr, flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _register(mcp: MCPServer, *, settings: Settings) -> None:
    # lazy: the use cases load once tools/list is answered (server/catalog.py)
    from operate_mcp.server.create import register_tools

    register_tools(mcp, settings, warm_up=True)
