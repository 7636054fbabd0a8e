"""The MCP face: wiring only. `create_server` builds the App and registers every toolset
(server/tools/); `http_app` serves it over streamable HTTP. Use cases live in workflows/.

Both load on first use: `operate-mcp serve` imports this package on its way to the tool catalog
(server/catalog.py) and must not pay for every use case before it answers `tools/list`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from operate_mcp.server.create import create_server
    from operate_mcp.server.http import http_app

__all__ = ["create_server", "http_app"]


def __getattr__(name: str) -> Any:
    if name == "create_server":
        # lazy: the whole App; see the docstring
        from operate_mcp.server.create import create_server

        return create_server
    if name == "http_app":
        # lazy: see the docstring
        from operate_mcp.server.http import http_app

        return http_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
