"""Server cold start to `tools/list` over stdio, with knowledge enabled (a benchmark, not a test).

    .venv/bin/python bench/cold_start.py [--runs 7] [--seed/--no-seed] [--target 1.5]

Each run spawns a fresh `operate-mcp serve` (stdio) with the `mcp` client, initializes the session and
lists the tools; the wall time from spawn to the tools/list answer is recorded. By default the data dir
is seeded first (the starter patterns and policies embedded into local Qdrant), so the server starts
against a real knowledge store, as it does after its first use. Prints median, min, max and whether
the median is under the target; exits 1 if it is not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp import Client, StdioServerParameters


def server_command() -> tuple[str, list[str]]:
    script = Path(sys.executable).parent / "operate-mcp"
    if script.exists():
        return str(script), ["serve"]
    return sys.executable, ["-m", "operate_mcp", "serve"]


def seed(data_dir: Path) -> float:
    """Fill the knowledge store the way first use does; returns how long that took (model load included)."""
    from operate_mcp.config import Settings
    from operate_mcp.knowledge.base import KnowledgeBase

    started = time.perf_counter()
    KnowledgeBase(Settings(data_dir=data_dir)).ready()
    return time.perf_counter() - started


async def one_run(env: dict[str, str]) -> tuple[float, int]:
    command, args = server_command()
    params = StdioServerParameters(command=command, args=args, env=env)
    started = time.perf_counter()
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - started
    return elapsed, len(tools)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", action=argparse.BooleanOptionalAction, default=True,
                        help="seed the knowledge store before timing (default: yes)")
    parser.add_argument("--target", type=float, default=1.5, help="seconds (default 1.5)")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="operate-mcp-coldstart-"))
    try:
        if args.seed:
            print(f"seeded the knowledge store in {seed(data_dir):.2f}s (model load + embedding, not timed below)")
        env = {**os.environ, "OPERATE_MCP_DATA_DIR": str(data_dir), "OPERATE_MCP_KNOWLEDGE_ENABLED": "true",
               "ANTHROPIC_API_KEY": ""}
        asyncio.run(one_run(env))  # warm the OS file cache once, as a machine that has run it before would be
        times = []
        tools = 0
        for i in range(args.runs):
            elapsed, tools = asyncio.run(one_run(env))
            times.append(elapsed)
            print(f"run {i + 1}: {elapsed:.3f}s ({tools} tools)")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    median = statistics.median(times)
    verdict = "under" if median < args.target else "OVER"
    print(f"cold start to tools/list: median {median:.3f}s, min {min(times):.3f}s, max {max(times):.3f}s "
          f"over {len(times)} runs, {tools} tools; {verdict} the {args.target:.1f}s target")
    return 0 if median < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
