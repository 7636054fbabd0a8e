"""Start-up from the shipped tool catalog: what a client lists before the tools register is what they are."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from mcp import Client, StdioServerParameters
from mcp.server.mcpserver import MCPServer

from operate_mcp.config import Settings
from operate_mcp.server import create_server
from operate_mcp.server.catalog import Catalog, StartingServer


async def live_tools(settings: Settings) -> list[dict]:
    async with Client(create_server(settings)) as client:
        return Catalog.wire((await client.list_tools()).tools)


async def test_the_shipped_catalog_is_what_the_registered_tools_list(tmp_path):
    """`UPDATE_SNAPSHOTS=1` rewrites src/operate_mcp/server/catalog.json from the live registration."""
    every = await live_tools(Settings(data_dir=tmp_path / "a", read_only_tools=True))
    without_reads = await live_tools(Settings(data_dir=tmp_path / "b", read_only_tools=False))
    read_tools = sorted({t["name"] for t in every} - {t["name"] for t in without_reads})
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        Catalog(every, read_tools).dump()
    catalog = Catalog.load()
    assert Catalog.wire(catalog.listed(read_only_tools=True)) == every, (
        "the tool catalog is stale: UPDATE_SNAPSHOTS=1 pytest tests/unit/server/test_server_catalog.py"
    )
    assert Catalog.wire(catalog.listed(read_only_tools=False)) == without_reads
    assert read_tools and all(name.startswith("kube_") for name in read_tools)


async def test_tools_are_listed_before_registration_and_a_call_waits_for_it(tmp_path):
    """The registration is held back here by an event the test sets, to see both sides of it; it is the real
    registration of every toolset."""
    from operate_mcp.server.create import register_tools

    settings = Settings(data_dir=tmp_path, knowledge_enabled=False)
    release = threading.Event()
    registered: list[str] = []

    def register(mcp: MCPServer) -> None:
        release.wait(30)
        register_tools(mcp, settings)
        registered.append("done")

    server = StartingServer(Catalog.load().listed(read_only_tools=True), register)
    async with Client(server) as client:
        listed = (await client.list_tools()).tools
        assert not registered and {t.name for t in listed} >= {"operate", "remediate", "runs_search", "kube_get"}
        release.set()
        result = await client.call_tool("runs_search", {"query": ""})
        assert registered == ["done"]
        assert not result.is_error, result.content
        assert result.structured_content is not None and result.structured_content["total"] == 0
        assert Catalog.wire((await client.list_tools()).tools) == Catalog.wire(listed)


async def test_a_registration_that_fails_leaves_a_server_that_says_why(tmp_path):
    def register(mcp: MCPServer) -> None:
        raise PermissionError(f"[Errno 13] Permission denied: '{tmp_path / 'records.db'}'")

    server = StartingServer(Catalog.load().listed(read_only_tools=True), register)
    async with Client(server) as client:
        assert (await client.list_tools()).tools
        result = await client.call_tool("runs_search", {"query": ""})
        assert result.is_error
        text = result.content[0].text
        assert "could not start its tools" in text and "Permission denied" in text and "records.db" in text
        result = await client.call_tool("audit_verify", {})  # still up, still saying why
        assert result.is_error and "Permission denied" in result.content[0].text


async def test_operate_mcp_serve_lists_from_the_catalog_and_then_calls_a_tool(tmp_path):
    """The real command over stdio, as a client starts it."""
    env = {**os.environ, "OPERATE_MCP_DATA_DIR": str(tmp_path), "OPERATE_MCP_KNOWLEDGE_ENABLED": "false"}
    params = StdioServerParameters(command=sys.executable, args=["-m", "operate_mcp", "serve"], env=env)
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert Catalog.wire(tools) == Catalog.wire(Catalog.load().listed(read_only_tools=True))
        result = await client.call_tool("runs_search", {"query": "status:failed"})
        assert not result.is_error, result.content
        assert result.structured_content is not None and result.structured_content["total"] == 0


def test_serve_imports_no_use_case_before_it_lists_tools():
    """What `operate-mcp serve` loads before it answers: the SDK and the catalog, not the use cases."""
    code = (
        "import sys; from operate_mcp.server import serve, catalog; "
        "heavy = sorted(m for m in sys.modules if m.startswith(('operate_mcp.workflows', 'operate_mcp.kube',"
        " 'operate_mcp.records', 'operate_mcp.knowledge', 'operate_mcp.agent', 'lark', 'kubernetes', 'anthropic',"
        " 'qdrant_client', 'torch'))); print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize("read_only_tools", [True, False])
def test_the_catalog_hides_the_read_tools_when_they_are_off(read_only_tools):
    names = {t.name for t in Catalog.load().listed(read_only_tools=read_only_tools)}
    assert ("kube_logs" in names) is read_only_tools
    assert "operate" in names
