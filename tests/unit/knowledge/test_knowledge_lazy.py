"""Starting the server and listing its tools never imports torch or the embedding model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

HEAVY = ("torch", "sentence_transformers", "transformers")

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, tempfile
    from pathlib import Path

    from mcp import Client

    from operate_mcp.config import Settings
    from operate_mcp.server import create_server
    from operate_mcp.knowledge.base import KnowledgeBase
    from operate_mcp.knowledge.cli import add_knowledge_parsers

    async def main():
        settings = Settings(data_dir=Path(tempfile.mkdtemp()))
        KnowledgeBase(settings)  # constructing it must stay cheap too
        async with Client(create_server(settings)) as client:
            tools = (await client.list_tools()).tools
        print(json.dumps({"tools": len(tools), "modules": sorted(m for m in sys.modules if m.split(".")[0] in %r)}))

    asyncio.run(main())
""") % (HEAVY,)


def test_server_start_and_tools_list_do_not_import_torch() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tools"] > 0
    assert result["modules"] == [], f"imported at start-up: {result['modules']}"
