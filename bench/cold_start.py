"""Server cold start to `tools/list` over stdio, against a bare one-tool server (a benchmark, not a test).

    .venv/bin/python bench/cold_start.py [--runs 5] [--seed/--no-seed] [--target 1.0] [--ratio 1.2]

Each run spawns a fresh `operate-mcp serve` (stdio) with the `mcp` client, initializes the session and
lists the tools; the wall time from spawn to the tools/list answer is recorded. In the same run, and
interleaved with it so both see the same machine load, a bare server — one `MCPServer` with one tool on
the same SDK, in the same interpreter — is timed the same way: the floor the SDK itself sets.

Start-up is measured as users see it: PYTHONDONTWRITEBYTECODE is removed from the servers' environment
(so bytecode caches are written and then used), and one unmeasured start of each warms the OS file
cache. By default the data dir is seeded first (the starter patterns and policies embedded into local
Qdrant), so the server starts against a real knowledge store, as it does after its first use.

Each start also makes one cheap tool call right after the list (operate-mcp answers `tools/list` from
its shipped catalog and registers its tools after; an early call waits for that) and prints when it was
answered, so the whole start-up is in view, not only the list.

Prints median, min and max of both, the ratio of the medians, and whether operate-mcp's median is under
`--target` seconds and within `--ratio` of the bare server's; exits 1 if either fails.
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

from bench_shared import BARE_SERVER
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


def user_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a user's client starts the server in: bytecode caches on."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


OURS_FIRST_CALL = ("runs_search", {"query": "status:failed"})
BARE_FIRST_CALL = ("ping", {})


async def time_to_tools(
    command: str, args: list[str], env: dict[str, str], first_call: tuple[str, dict[str, str]]
) -> tuple[float, int, float]:
    """Seconds from spawn to the tools/list answer, how many tools it listed, and seconds from spawn to the
    answer of a first cheap tool call made right after (operate-mcp registers its tools once the list is
    answered: a call that comes early waits for that, and this is what it waits)."""
    params = StdioServerParameters(command=command, args=args, env=env)
    started = time.perf_counter()
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - started
        result = await client.call_tool(*first_call)
        called = time.perf_counter() - started
        if result.is_error:
            raise SystemExit(f"the first call {first_call[0]} failed: {result.content}")
    return elapsed, len(tools), called


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="seed the knowledge store before timing (default: yes)",
    )
    parser.add_argument("--target", type=float, default=1.0, help="seconds (default 1.0)")
    parser.add_argument("--ratio", type=float, default=1.2, help="allowed ratio to the bare server (default 1.2)")
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="operate-mcp-coldstart-"))
    bare_script = data_dir / "bare_server.py"
    bare_script.write_text(BARE_SERVER)
    ours_cmd, ours_args = server_command()
    ours_env = user_env(
        {"OPERATE_MCP_DATA_DIR": str(data_dir), "OPERATE_MCP_KNOWLEDGE_ENABLED": "true", "ANTHROPIC_API_KEY": ""}
    )
    bare_env = user_env()
    ours: list[float] = []
    bare: list[float] = []
    ours_call: list[float] = []
    bare_call: list[float] = []
    tools = 0
    try:
        if args.seed:
            print(f"seeded the knowledge store in {seed(data_dir):.2f}s (model load + embedding, not timed below)")
        # Warm the OS file cache and write bytecode once, as a machine that has run them before would have.
        asyncio.run(time_to_tools(ours_cmd, ours_args, ours_env, OURS_FIRST_CALL))
        asyncio.run(time_to_tools(sys.executable, [str(bare_script)], bare_env, BARE_FIRST_CALL))
        for i in range(args.runs):
            elapsed, tools, called = asyncio.run(time_to_tools(ours_cmd, ours_args, ours_env, OURS_FIRST_CALL))
            ours.append(elapsed)
            ours_call.append(called)
            floor, _, floor_call = asyncio.run(
                time_to_tools(sys.executable, [str(bare_script)], bare_env, BARE_FIRST_CALL)
            )
            bare.append(floor)
            bare_call.append(floor_call)
            print(
                f"run {i + 1}: operate-mcp {elapsed:.3f}s ({tools} tools; first call answered at {called:.3f}s), "
                f"bare server {floor:.3f}s (first call at {floor_call:.3f}s)"
            )
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    ours_median, bare_median = statistics.median(ours), statistics.median(bare)
    ratio = ours_median / bare_median
    print(
        f"operate-mcp serve: median {ours_median:.3f}s, min {min(ours):.3f}s, max {max(ours):.3f}s "
        f"over {len(ours)} runs, {tools} tools"
    )
    print(f"bare one-tool server: median {bare_median:.3f}s, min {min(bare):.3f}s, max {max(bare):.3f}s")
    print(
        f"first tool call answered (from spawn): operate-mcp median {statistics.median(ours_call):.3f}s "
        f"({OURS_FIRST_CALL[0]}), bare server {statistics.median(bare_call):.3f}s ({BARE_FIRST_CALL[0]}); "
        "not a goal, shown so the catalog's head start is not mistaken for the whole start-up"
    )
    ok_abs, ok_ratio = ours_median < args.target, ratio <= args.ratio
    print(
        f"ratio {ratio:.2f}x the bare server ({'within' if ok_ratio else 'OVER'} {args.ratio:.1f}x); "
        f"{'under' if ok_abs else 'OVER'} the {args.target:.1f}s target; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return 0 if ok_abs and ok_ratio else 1


if __name__ == "__main__":
    sys.exit(main())
