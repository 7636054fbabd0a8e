"""The public MCP surface: tool list snapshot, annotations, both transports, the HTTP token."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mcp import Client, StdioServerParameters

from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.server import create_server, http_app

SNAPSHOT = Path(__file__).resolve().parents[2] / "fixtures" / "tools_snapshot.json"


def surface(tools) -> dict:
    return {
        t.name: {
            "annotations": t.annotations.model_dump(exclude_none=True) if t.annotations else None,
            "input": {k: v.get("description") for k, v in sorted(t.input_schema.get("properties", {}).items())},
            "output": sorted((t.output_schema or {}).get("properties", {})),
        }
        for t in tools
    }


async def test_tool_list_matches_the_snapshot(tmp_path):
    """A change to the public surface must show up as a diff of tests/fixtures/tools_snapshot.json."""
    async with Client(create_server(Settings(data_dir=tmp_path))) as client:
        tools = (await client.list_tools()).tools
    got = surface(tools)
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.write_text(json.dumps(got, indent=2, sort_keys=True) + "\n")
    assert got == json.loads(SNAPSHOT.read_text())


async def test_every_tool_parameter_has_a_description(tmp_path):
    """An agent has only the schema to go on: a bare nullable integer says nothing (issue #14, item 11)."""
    async with Client(create_server(Settings(data_dir=tmp_path))) as client:
        tools = (await client.list_tools()).tools
    bare = [
        f"{t.name}.{k}"
        for t in tools
        for k, v in t.input_schema.get("properties", {}).items()
        if not v.get("description")
    ]
    assert not bare, f"parameters without a description: {bare}"


async def test_every_tool_declares_all_four_hints(tmp_path):
    async with Client(create_server(Settings(data_dir=tmp_path))) as client:
        tools = (await client.list_tools()).tools
    for t in tools:
        a = t.annotations
        assert a is not None, t.name
        assert None not in (a.read_only_hint, a.destructive_hint, a.idempotent_hint, a.open_world_hint), t.name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_on_a_public_address_needs_a_token(tmp_path):
    mcp = create_server(Settings(data_dir=tmp_path))
    with pytest.raises(OperateError, match="OPERATE_MCP_HTTP_TOKEN"):
        http_app(mcp, Settings(data_dir=tmp_path), "0.0.0.0")


async def test_http_token_is_enforced(tmp_path):
    settings = Settings(data_dir=tmp_path, http_token="s3cret-token")
    app = http_app(create_server(settings), settings, "0.0.0.0")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        missing = await client.post("/mcp", json={})
        wrong = await client.post("/mcp", json={}, headers={"Authorization": "Bearer nope"})
    assert missing.status_code == 401 and wrong.status_code == 401


def _env(tmp_path) -> dict[str, str]:
    return {**os.environ, "OPERATE_MCP_DATA_DIR": str(tmp_path), "ANTHROPIC_API_KEY": ""}


async def test_stdio_server_lists_tools(tmp_path):
    params = StdioServerParameters(command=sys.executable, args=["-m", "operate_mcp", "serve"], env=_env(tmp_path))
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "operate" in names


async def test_streamable_http_server_lists_tools(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "operate_mcp", "serve", "--transport", "http", "--port", str(port)],
        env=_env(tmp_path),
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {t.name for t in (await client.list_tools()).tools}
        assert "operate" in names
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    # The person who started it is told where to point the client (issue #14, item 6).
    said = proc.stderr.read().decode() if proc.stderr else ""
    assert f"serving MCP at http://127.0.0.1:{port}/mcp" in said and f"http://127.0.0.1:{port}/metrics" in said


async def test_prometheus_metrics_endpoint_over_http(tmp_path):
    settings = Settings(data_dir=tmp_path, http_token="s3cret-token")
    app = http_app(create_server(settings), settings, "127.0.0.1")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        denied = await client.get("/metrics")
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert denied.status_code == 401
    assert ok.status_code == 200 and "operate_mcp_executions_total" in ok.text
