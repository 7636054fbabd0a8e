"""Start fast: answer `tools/list` from the tool catalog shipped in the package, register the tools after.

A client starts the server and waits for its tool list before the person can do anything. Registering
eighteen tools means importing every use case and building their pydantic models (about half a second
here), none of which listing the tools needs: `catalog.json` holds exactly what the registered tools
list (a test fails when the two differ; `UPDATE_SNAPSHOTS=1` rewrites it). The real registration starts
once the list is answered, in a thread, and any other request waits for it, so a call never meets a
half-built server. This module stays light: the SDK, the settings and nothing of the use cases.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, CallToolResult, TextContent, Tool
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from operate_mcp import __version__
from operate_mcp.errors import OperateError

CATALOG = Path(__file__).with_name("catalog.json")

INSTRUCTIONS = """operate-mcp operates Kubernetes applications safely.
Call `operate` with a natural-language intent; it returns a proposal with the exact kubectl
commands, their server-side dry-run results, a rollback plan and a risk tier, stored in a
session. Call `remediate` with a symptom to diagnose what is wrong (evidence cited line by
line) and get a fix as the same kind of proposal. Show proposals to the person. Execution
needs their approval."""

# Requests that never touch a tool: answered while the tools register.
_NEEDS_NO_TOOLS = frozenset(
    {
        "initialize",
        "notifications/initialized",
        "server/discover",
        "ping",
        "tools/list",
        "logging/setLevel",
        "notifications/cancelled",
        "notifications/roots/list_changed",
    }
)


def new_server() -> MCPServer:
    """The one MCPServer every path builds, so the catalog and the registered server introduce themselves alike."""
    return MCPServer(name="operate-mcp", version=__version__, instructions=INSTRUCTIONS)


class Catalog:
    """The shipped tool list: every tool, and which of them `read_only_tools=false` hides."""

    def __init__(self, tools: Sequence[dict[str, Any]], read_tools: Sequence[str]) -> None:
        self.tools = list(tools)
        self.read_tools = frozenset(read_tools)

    @classmethod
    def load(cls, path: Path = CATALOG) -> Catalog:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(data["tools"], data["read_tools"])

    def listed(self, *, read_only_tools: bool) -> list[Tool]:
        return [
            Tool.model_validate(t) for t in self.tools if read_only_tools or t["name"] not in self.read_tools
        ]

    @staticmethod
    def wire(tools: Sequence[Tool]) -> list[dict[str, Any]]:
        """A tool list as the client receives it, the form the catalog stores."""
        return [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]

    def dump(self, path: Path = CATALOG) -> None:
        data = {"tools": self.tools, "read_tools": sorted(self.read_tools)}
        path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")


class StartingServer(MCPServer):
    """Lists the catalog's tools until `register` has run, then its own; every other request waits for it.

    `register` builds the App and registers the toolsets onto this server; it runs once, in a thread,
    started by the first `tools/list` (after its answer is built) or by the first request that needs a
    tool. If it fails, the server keeps answering and every such request gets its error.
    """

    def __init__(self, tools: list[Tool], register: Callable[[MCPServer], None]) -> None:
        super().__init__(name="operate-mcp", version=__version__, instructions=INSTRUCTIONS)
        self._catalog = tools
        self._register = register
        self._lock = threading.Lock()
        self._started = False
        self._done = threading.Event()
        self._failure: str | None = None
        self.middleware.append(self._wait_for_tools)

    @property
    def registered(self) -> bool:
        return self._done.is_set() and self._failure is None

    def begin(self) -> None:
        """Start registering (once); returns at once."""
        with self._lock:
            if self._started:
                return
            self._started = True
        threading.Thread(target=self._run, name="register-tools", daemon=True).start()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _run(self) -> None:
        try:
            self._register(self)
        except BaseException as exc:  # any end but success (SystemExit too): the server stays up, says why
            self._failure = str(exc) if isinstance(exc, OperateError) else f"{type(exc).__name__}: {exc}"
            logging.getLogger(__name__).exception("registering the tools failed")
        else:
            if Catalog.wire(asyncio.run(super().list_tools())) != Catalog.wire(self._catalog):
                logging.getLogger(__name__).warning(
                    "the shipped tool catalog differs from the registered tools; a client that listed tools "
                    "before registration saw the catalog (regenerate it: UPDATE_SNAPSHOTS=1 pytest "
                    "tests/unit/server/test_server_catalog.py)"
                )
        finally:
            self._done.set()

    async def list_tools(self) -> list[Tool]:
        if self.registered:
            return await super().list_tools()
        tools = list(self._catalog)
        self.begin()
        return tools

    async def _wait_for_tools(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        if ctx.method not in _NEEDS_NO_TOOLS:
            # The SDK refuses a request sent before `initialize` only after the middleware: judged on arrival here,
            # or an `initialize` accepted while this one waited would let it through.
            early = ctx.session.client_params is None and ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS
            if not self._done.is_set():
                self.begin()
                await anyio.to_thread.run_sync(self._done.wait)
            if early and ctx.session.client_params is not None:
                raise MCPError(code=INVALID_PARAMS, message="Invalid request parameters", data="")
            if self._failure is not None:
                message = f"operate-mcp could not start its tools: {self._failure}"
                if ctx.method == "tools/call":  # a tool error the agent reads, not an opaque protocol error
                    return CallToolResult(content=[TextContent(text=message)], is_error=True)
                raise MCPError(code=INTERNAL_ERROR, message=message)
        return await call_next(ctx)
