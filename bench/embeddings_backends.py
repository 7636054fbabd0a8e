"""The embeddings backends compared: load time, memory, throughput, and the server's first knowledge call.

    .venv/bin/python bench/embeddings_backends.py [--backend onnx|torch ...] [--server] [--repeat 3]

For each backend, in a fresh interpreter (so memory is that backend's alone): the time to import and load
all-MiniLM-L6-v2, the process's RSS before and after, embeddings per second over the starter texts in
batches of 32, and the latency of one short query. With --server it also spawns `operate-mcp serve`
(stdio) with that backend and times tools/list, then the first `manage_knowledge search` twice: right
after tools/list (the background warm-up still running) and after waiting for it, and reads the
server's RSS. Run it with the interpreter of the install you want to measure (a light venv has no torch).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

IN_PROCESS = textwrap.dedent("""
    import json, resource, sys, time

    def rss_mb():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:")) / 1024

    backend, repeat = sys.argv[1], int(sys.argv[2])
    from operate_mcp.knowledge.embeddings import make_embedder
    from operate_mcp.knowledge.models import load_yaml_items, starter_dir

    texts = [item.search_text() for item in load_yaml_items(starter_dir())]
    before = rss_mb()
    started = time.perf_counter()
    embedder = make_embedder("all-MiniLM-L6-v2", backend)
    embedder.embed(["warm up"])
    load = time.perf_counter() - started
    batch = texts * 4
    started = time.perf_counter()
    for _ in range(repeat):
        embedder.embed(batch)
    per_second = repeat * len(batch) / (time.perf_counter() - started)
    queries = []
    for _ in range(20):
        started = time.perf_counter()
        embedder.embed(["roll back checkout in namespace shop"])
        queries.append(time.perf_counter() - started)
    queries.sort()
    print(json.dumps({
        "backend": embedder.backend, "load_s": round(load, 2), "rss_before_mb": round(before),
        "rss_after_mb": round(rss_mb()),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "texts_per_s": round(per_second, 1), "query_ms_median": round(queries[10] * 1000, 1),
        "mean_text_chars": round(sum(map(len, batch)) / len(batch)),
    }))
""")


def in_process(backend: str, repeat: int) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, backend, str(repeat)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"{backend}: {proc.stderr.strip()[-2000:]}")
    result: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def child_rss_mb() -> float:
    """RSS of this process's children (the spawned server), from /proc."""
    total = 0
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[1] == me:
                status = (stat.parent / "status").read_text()
                total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        except (OSError, StopIteration, IndexError):
            continue
    return total / 1024


async def server_run(backend: str, wait: float) -> dict[str, float]:
    data_dir = tempfile.mkdtemp(prefix="operate-mcp-embbench-")
    env = {
        **os.environ,
        "OPERATE_MCP_DATA_DIR": data_dir,
        "OPERATE_MCP_EMBEDDING_BACKEND": backend,
        "OPERATE_MCP_KNOWLEDGE_ENABLED": "true",
        "ANTHROPIC_API_KEY": "",
    }
    script = Path(sys.executable).parent / "operate-mcp"
    params = StdioServerParameters(command=str(script), args=["serve"], env=env)
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        tools = time.perf_counter() - started
        await asyncio.sleep(wait)
        call = time.perf_counter()
        result = await client.call_tool(
            "manage_knowledge", {"action": "search", "kind": "pattern", "query": "make the database highly available"}
        )
        first = time.perf_counter() - call
        if result.is_error:
            raise SystemExit(f"{backend}: search failed: {result.content}")
        call = time.perf_counter()
        await client.call_tool("manage_knowledge", {"action": "search", "kind": "policy", "query": "scale up"})
        second = time.perf_counter() - call
        rss = child_rss_mb()
    return {
        "tools_list_s": round(tools, 2),
        "waited_s": wait,
        "first_search_s": round(first, 2),
        "second_search_s": round(second, 3),
        "server_rss_mb": round(rss),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["onnx", "torch"])
    parser.add_argument("--server", action="store_true", help="also time a spawned `operate-mcp serve`")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to let the warm-up finish (default 30)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for backend in args.backend or ["onnx", "torch"]:
        print(json.dumps(in_process(backend, args.repeat)), flush=True)
        if args.server:
            for wait in (0.0, args.wait):
                print(json.dumps({"backend": backend, **asyncio.run(server_run(backend, wait))}), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
