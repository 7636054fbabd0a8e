"""The MCP face: wiring only. `create_server` builds the App and registers every toolset
(server/tools/); `http_app` serves it over streamable HTTP. Use cases live in workflows/."""

from operate_mcp.server.create import create_server
from operate_mcp.server.http import http_app

__all__ = ["create_server", "http_app"]
