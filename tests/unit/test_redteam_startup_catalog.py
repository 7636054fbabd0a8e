"""Red team of the start-up from the shipped tool catalog (server/catalog.py): a client sending requests in odd
orders, and a registration that does not end the way it should. Each test is one attack that got through.

What held (tests/unit/server/test_server_catalog.py covers the plain paths): calls, `resources/list` and
unknown methods sent before the first `tools/list` wait for the registration; a cancelled waiting call never runs;
the catalog lists exactly the registered tools with knowledge off, `approval_channels=["cli"]`, automatic
remediation or other production namespaces; an argument the schema refuses is refused after the wait as before.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client
from mcp.server.mcpserver import MCPServer

from operate_mcp.server.catalog import Catalog, StartingServer


def _serve(tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "OPERATE_MCP_DATA_DIR": str(tmp_path), "OPERATE_MCP_KNOWLEDGE_ENABLED": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "operate_mcp", "serve"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )


def _answers(proc: subprocess.Popen[str], ids: set[int], timeout: float = 60) -> dict[int, dict[str, Any]]:
    assert proc.stdout is not None
    got: dict[int, dict[str, Any]] = {}
    deadline = time.monotonic() + timeout
    while ids - got.keys() and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 1)[0]:
            line = proc.stdout.readline()
            if not line:
                break
            message = json.loads(line)
            if message.get("id") in ids:
                got[message["id"]] = message
    return got


def test_a_tool_call_sent_before_initialize_is_refused_as_without_the_catalog(tmp_path: Path) -> None:
    """Broke: the SDK refuses a request sent before `initialize`, but checks only once the middleware lets the
    request go on; the catalog's middleware held it until the tools registered, by which time the `initialize`
    sent after it had been accepted, so the early call ran. A plain server refuses it at once."""
    proc = _serve(tmp_path)
    assert proc.stdin is not None
    try:
        for message in (
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "runs_search", "arguments": {"query": ""}}},
            {"jsonrpc": "2.0", "id": 2, "method": "initialize",
             "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                        "clientInfo": {"name": "early", "version": "1"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
             "params": {"name": "runs_search", "arguments": {"query": ""}}},
        ):
            proc.stdin.write(json.dumps(message) + "\n")
        proc.stdin.flush()
        got = _answers(proc, {1, 2, 3})
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert "result" in got[2] and "result" in got[3], got  # the handshake, then a call, as ever
    assert "error" in got[1], got[1]  # the call sent before the handshake ran no tool


async def test_a_registration_cut_short_by_any_exception_serves_no_tool() -> None:
    """Broke: only `Exception` was recorded as a failure; a registration ended by another exception (SystemExit
    from a library, a KeyboardInterrupt) after registering some tools left a server that served those tools
    and answered 'unknown tool' for the rest, without saying why."""

    def register(mcp: MCPServer) -> None:
        @mcp.tool(name="runs_search")
        def runs_search(query: str) -> str:
            return "ran on a half-registered server"

        raise SystemExit("a library gave up")

    server = StartingServer(Catalog.load().listed(read_only_tools=True), register)
    async with Client(server) as client:
        await client.list_tools()
        assert server.wait(30)
        result = await client.call_tool("runs_search", {"query": ""})
        assert result.is_error, result.content
        assert "could not start its tools" in result.content[0].text  # type: ignore[union-attr]
