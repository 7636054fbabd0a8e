"""operate-mcp side by side with two peer Kubernetes MCP servers (a benchmark, not a test).

    .venv/bin/python bench/peers_bench.py [--sizes 100 1000] [--runs 15] [--starts 5] [--keep] [--markdown FILE]

Starts its own test bed (`OPERATE_MCP_TESTBED_CLUSTER=operate-mcp-peers scripts/testbed up`, a cluster apart
from the one the tests share) and drives, through the same MCP client over stdio and in one run:

* operate-mcp (`operate-mcp serve`, this checkout's venv);
* kubernetes-mcp-server, the Go server (its npm package's linux-amd64 binary, started directly: the npm
  `bin` is a node shim that spawns it);
* mcp-server-kubernetes, the TypeScript server (`node dist/index.js`);
* a bare one-tool server on operate-mcp's MCP SDK, for cold start only (the SDK's floor).

The peers come from npm into a cache outside the repo (default ~/.cache/operate-mcp/peers):

    cd ~/.cache/operate-mcp/peers && npm install kubernetes-mcp-server mcp-server-kubernetes

It loads a namespace with 100 and then 1,000 pods (KWOK: tainted fake nodes of the benchmark's own hold
them; the one pod whose logs are read runs on the bed's nodes, whose kubelet endpoint KWOK serves) and
measures, per server: cold start to the first `tools/list` (median of `--starts` fresh spawns,
interleaved across servers so all see the same machine load); for each equivalent operation p50 and p95
over `--runs` warm calls after one warm-up, and the size of the answer (the text content blocks a
client hands the model) in bytes and in tokens; and the peak RSS of the server's process tree during
the calls (sampled every 20 ms: operate-mcp and the TypeScript server run kubectl children). operate-mcp
starts with its defaults for cold start, and with the knowledge store off for the calls (they never use it;
on, `serve` loads the embedding model in the background, which would compete with the timed calls).

Tokens: OpenAI's cl100k_base through the `bpe-openai` package when importable (no tokenizer API is
reachable from here; install it outside the repo with
`pip install --target ~/.cache/operate-mcp/bench-py bpe-openai`), else bytes/4. Claude's tokenizer is not
public; cl100k is a common stand-in, and the ratios between servers matter more than the absolute counts.

Each server is called with its own defaults, as an agent with the minimal arguments would: operate-mcp's
`kube_get` answers a table unless asked for yaml/json; the TypeScript server's `kubectl_get` answers JSON;
the Go server's lists are tables and its `resources_get` YAML. A server without an equivalent tool is
reported as "no equivalent tool". Removes what it created and stops its cluster unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench_shared import BARE_SERVER, nodes_manifest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

REPO = Path(__file__).resolve().parent.parent
CLUSTER = "operate-mcp-peers"
NAMESPACE = "bench-peers"
BENCH_NODES = 11  # 110 pods each: room for 1,000 and the bed's system pods elsewhere
PEERS_DIR = Path(os.environ.get("OPERATE_MCP_PEERS_DIR", Path.home() / ".cache/operate-mcp/peers"))
GO_BINARY = PEERS_DIR / "node_modules/kubernetes-mcp-server-linux-amd64/bin/kubernetes-mcp-server-linux-amd64"
TS_ENTRY = PEERS_DIR / "node_modules/mcp-server-kubernetes/dist/index.js"
BENCH_PY = Path.home() / ".cache/operate-mcp/bench-py"

OURS, GO, TS, BARE = "operate-mcp", "kubernetes-mcp-server (Go)", "mcp-server-kubernetes (TS)", "bare SDK server"
OURS_READS = "operate-mcp for the reads"  # knowledge off: see servers()
PEERS = (GO, TS)


# --- tokens --------------------------------------------------------------------------------------


def token_counter() -> tuple[str, Callable[[str], int]]:
    sys.path.insert(0, str(BENCH_PY))
    try:
        import bpe_openai  # lazy: an optional tool of the benchmark, installed outside the repo

        encoding = bpe_openai.get_encoding("cl100k_base")

        def count(text: str) -> int:
            """In pieces of lines, long ones cut (the binding refuses one input past 200,000 tokens)."""
            total, piece = 0, []
            for whole in text.splitlines(keepends=True):
                for line in (whole[i : i + 100_000] for i in range(0, len(whole), 100_000)):
                    piece.append(line)
                    if len(piece) == 2_000:
                        total, piece = total + len(encoding.encode("".join(piece))), []
            return total + len(encoding.encode("".join(piece)))

        return "cl100k_base (bpe-openai)", count
    except ImportError:
        return "bytes/4 (no tokenizer installed)", lambda text: (len(text.encode()) + 3) // 4
    finally:
        sys.path.remove(str(BENCH_PY))


# --- the cluster ---------------------------------------------------------------------------------


@dataclass
class Bed:
    kubeconfig: str
    bin_dir: str

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [f"{self.bin_dir}/kubectl", "--kubeconfig", self.kubeconfig, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=False,
        )
        if check and proc.returncode != 0:
            raise SystemExit(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
        return proc.stdout


def testbed(command: str) -> str:
    env = {**os.environ, "OPERATE_MCP_TESTBED_CLUSTER": CLUSTER}
    proc = subprocess.run(
        [str(REPO / "scripts/testbed"), command], capture_output=True, text=True, env=env, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"scripts/testbed {command} failed:\n{proc.stderr[-2000:]}")
    return proc.stdout.strip()


def deployment(name: str, replicas: int, on_bench_nodes: bool) -> str:
    lines = [
        "apiVersion: apps/v1",
        "kind: Deployment",
        f"metadata: {{name: {name}, namespace: {NAMESPACE}, labels: {{app: {name}}}}}",
        "spec:",
        f"  replicas: {replicas}",
        f"  selector: {{matchLabels: {{app: {name}}}}}",
        "  template:",
        f"    metadata: {{labels: {{app: {name}}}}}",
        "    spec:",
    ]
    if on_bench_nodes:
        lines += [
            '      nodeSelector: {operate-mcp.dev/bench: "true"}',
            "      tolerations: [{key: operate-mcp.dev/bench, operator: Exists, effect: NoSchedule}]",
        ]
    lines += [
        "      containers:",
        "      - name: app",
        '        image: "registry.example/app:1.0"',
        "        ports: [{containerPort: 8080}]",
        "        resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}",
        "        env: [{name: MODE, value: bench}]",
    ]
    return "\n".join(lines) + "\n"


def load_namespace(bed: Bed, pods: int) -> str:
    """`pods` pods in the namespace: one `logger` on the bed's own nodes (its logs are served), the rest `web`."""
    bed.kubectl("apply", "-f", "-", stdin=deployment("web", pods - 1, True) + "---\n" + deployment("logger", 1, False))
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        items = json.loads(bed.kubectl("get", "pods", "-n", NAMESPACE, "-o", "json"))["items"]
        running = [
            p for p in items if p["status"].get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")
        ]
        print(f"  {len(items)} pods, {len(running)} running", end="\r", flush=True)
        if len(running) == pods and len(items) == pods:
            print()
            return next(p["metadata"]["name"] for p in running if p["metadata"]["labels"]["app"] == "logger")
        time.sleep(3)
    raise SystemExit(f"the {pods} pods did not all run within 900 s; see `kubectl get pods -n {NAMESPACE}`")


# --- the servers ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    command: str
    args: list[str]
    env: dict[str, str]


def servers(bed: Bed, data_dir: Path, bare_script: Path) -> dict[str, Server]:
    # Start-up as users see it: bytecode caches written and used.
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    base.update({"KUBECONFIG": bed.kubeconfig, "PATH": f"{bed.bin_dir}:{base.get('PATH', '')}"})
    ours_bin = Path(sys.executable).parent / "operate-mcp"
    ours_env = {
        **base,
        "OPERATE_MCP_DATA_DIR": str(data_dir),
        "OPERATE_MCP_KUBECONFIG": bed.kubeconfig,
        "ANTHROPIC_API_KEY": "",
    }
    # The read tools never touch the knowledge store; with it on, `serve` loads the embedding model in a
    # background thread, which would compete for the CPUs with the timed calls and dominate the RSS.
    reads_env = {**ours_env, "OPERATE_MCP_KNOWLEDGE_ENABLED": "false"}
    return {
        OURS: Server(OURS, str(ours_bin), ["serve"], ours_env),
        OURS_READS: Server(OURS, str(ours_bin), ["serve"], reads_env),
        GO: Server(GO, str(GO_BINARY), ["--kubeconfig", bed.kubeconfig], base),
        TS: Server(TS, "node", [str(TS_ENTRY)], base),
        BARE: Server(BARE, sys.executable, [str(bare_script)], base),
    }


def versions() -> dict[str, str]:
    ts_pkg = json.loads((TS_ENTRY.parent.parent / "package.json").read_text())
    go = subprocess.run([str(GO_BINARY), "--version"], capture_output=True, text=True, check=False).stdout.strip()
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        OURS: f"{metadata.version('operate-mcp')} (Python {platform.python_version()}, "
        f"mcp SDK {metadata.version('mcp')})",
        GO: f"{go.removeprefix('v')} (npm kubernetes-mcp-server, linux-amd64 binary)",
        TS: f"{ts_pkg['version']} (node {node.removeprefix('v')}, @modelcontextprotocol/sdk "
        f"{ts_pkg['dependencies']['@modelcontextprotocol/sdk']})",
    }


def tree_rss_kb(root: int) -> int:
    """Resident memory of `root` and all its descendants, from /proc (kB)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
        todo.extend(children.get(pid, []))
    return total


class RssSampler:
    """Peak RSS of the server this process spawned (our only child while a session is open)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _server_pid(self) -> int | None:
        me = str(os.getpid())
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[1] == me:
                        return int(entry.name)
                except OSError:
                    continue
        return None

    def _run(self) -> None:
        pid = None
        while not self._stop.is_set():
            pid = pid or self._server_pid()
            if pid:
                self.peak_kb = max(self.peak_kb, tree_rss_kb(pid))
            self._stop.wait(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- operations ----------------------------------------------------------------------------------


def operations(logger_pod: str) -> list[tuple[str, dict[str, tuple[str, dict[str, Any]]]]]:
    """(label, {server: (tool, arguments)}): the same question put to each server in its own words."""
    ns = NAMESPACE
    return [
        (
            "list pods in a namespace",
            {
                OURS: ("kube_get", {"resource": "pods", "namespace": ns}),
                GO: ("pods_list_in_namespace", {"namespace": ns}),
                TS: ("kubectl_get", {"resourceType": "pods", "namespace": ns}),
            },
        ),
        (
            "get one deployment",
            {
                OURS: ("kube_get", {"resource": "deployments", "name": "web", "namespace": ns}),
                GO: ("resources_get", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": ns}),
                TS: ("kubectl_get", {"resourceType": "deployments", "name": "web", "namespace": ns}),
            },
        ),
        (
            "get one deployment as YAML",
            {
                OURS: ("kube_get", {"resource": "deployments", "name": "web", "namespace": ns, "output": "yaml"}),
                GO: ("resources_get", {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": ns}),
                TS: ("kubectl_get", {"resourceType": "deployments", "name": "web", "namespace": ns, "output": "yaml"}),
            },
        ),
        (
            "list events of a namespace",
            {
                OURS: ("kube_events", {"namespace": ns}),
                GO: ("events_list", {"namespace": ns}),
                TS: ("kubectl_get", {"resourceType": "events", "namespace": ns}),
            },
        ),
        (
            "logs of one pod, tail 50",
            {
                OURS: ("kube_logs", {"pod": logger_pod, "namespace": ns, "tail_lines": 50}),
                GO: ("pods_log", {"name": logger_pod, "namespace": ns, "tail": 50}),
                TS: ("kubectl_logs", {"resourceType": "pod", "name": logger_pod, "namespace": ns, "tail": 50}),
            },
        ),
    ]


@dataclass
class OpResult:
    times: list[float] = field(default_factory=list)
    answer_bytes: int = 0
    tokens: int = 0
    error: str | None = None  # "no equivalent tool", or the tool's error text

    def p(self, q: float) -> float:
        ordered = sorted(self.times)
        return ordered[max(0, min(len(ordered) - 1, round(q * len(ordered)) - 1))]


def answer_text(result: Any) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def run_server(
    server: Server, ops: list[tuple[str, dict[str, tuple[str, dict[str, Any]]]]], runs: int, count: Callable[[str], int]
) -> tuple[dict[str, OpResult], int]:
    results: dict[str, OpResult] = {}
    params = StdioServerParameters(command=server.command, args=server.args, env=server.env)
    with RssSampler() as rss:
        async with Client(params, read_timeout_seconds=120) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            for label, per_server in ops:
                tool, arguments = per_server[server.name]
                res = results[label] = OpResult()
                if tool not in names:
                    res.error = "no equivalent tool"
                    continue
                try:
                    answer = await client.call_tool(tool, arguments)  # warm-up: connections, caches, discovery
                except MCPError as exc:  # a server may fail the call as a protocol error, not a tool error
                    res.error = f"fails: {exc}"
                    continue
                text = answer_text(answer)
                if answer.is_error:
                    res.error = f"fails: {text}"
                    continue
                res.answer_bytes, res.tokens = len(text.encode()), count(text)
                for _ in range(runs):
                    started = time.perf_counter()
                    await client.call_tool(tool, arguments)
                    res.times.append(time.perf_counter() - started)
    return results, rss.peak_kb


async def time_to_tools(server: Server) -> float:
    params = StdioServerParameters(command=server.command, args=server.args, env=server.env)
    started = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
        return time.perf_counter() - started


def cold_starts(all_servers: dict[str, Server], starts: int) -> dict[str, list[float]]:
    order = [OURS, GO, TS, BARE]
    for name in order:  # warm the file cache, write bytecode
        asyncio.run(time_to_tools(all_servers[name]))
    times: dict[str, list[float]] = {name: [] for name in order}
    for _ in range(starts):
        for name in order:
            times[name].append(asyncio.run(time_to_tools(all_servers[name])))
    return times


# --- the report ----------------------------------------------------------------------------------


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "—"


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}" if seconds >= 0.1 else f"{seconds * 1000:.1f}"


def report(
    when: str,
    machine: str,
    vers: dict[str, str],
    tokenizer: str,
    starts: dict[str, list[float]],
    sizes: dict[int, tuple[dict[str, dict[str, OpResult]], dict[str, int]]],
    runs: int,
) -> str:
    out = [f"Run {when} on {machine}; {runs} warm calls per operation after one warm-up, tokens: {tokenizer}.", ""]
    out += ["| server | version |", "|---|---|"] + [f"| {k} | {v} |" for k, v in vers.items()] + [""]
    med = {k: statistics.median(v) for k, v in starts.items()}
    out += [
        f"**Cold start to the first `tools/list`** (median of {len(starts[OURS])} fresh spawns, min-max)",
        "",
        "| server | median s | min-max s | ours / theirs |",
        "|---|---:|---:|---:|",
    ]
    for name, t in starts.items():
        out.append(
            f"| {name} | {med[name]:.3f} | {min(t):.3f}-{max(t):.3f} | "
            f"{'—' if name == OURS else ratio(med[OURS], med[name])} |"
        )
    for pods, (per_server, rss) in sizes.items():
        out += [
            "",
            f"**{pods:,} pods in the namespace**",
            "",
            "| operation | server | p50 ms | p95 ms | bytes | tokens | p50 ours/theirs | tokens ours/theirs |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        for label in per_server[OURS]:
            mine = per_server[OURS][label]
            for name in (OURS, *PEERS):
                r = per_server[name][label]
                if r.error:
                    out.append(f"| {label} | {name} | {r.error.splitlines()[0][:80]} | | | | | |")
                    continue
                cmp_t = cmp_k = ""
                if name != OURS and not mine.error:
                    cmp_t, cmp_k = ratio(mine.p(0.5), r.p(0.5)), ratio(mine.tokens, r.tokens)
                out.append(
                    f"| {label} | {name} | {ms(r.p(0.5))} | {ms(r.p(0.95))} | {r.answer_bytes:,} | "
                    f"{r.tokens:,} | {cmp_t} | {cmp_k} |"
                )
        out += [
            "",
            "| peak RSS of the process tree during the calls | "
            + " | ".join(
                f"{name}: {rss[name] / 1024:.0f} MB" + ("" if name == OURS else f" ({ratio(rss[OURS], rss[name])})")
                for name in (OURS, *PEERS)
            )
            + " |",
        ]
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--runs", type=int, default=15, help="warm calls per operation (default 15)")
    ap.add_argument("--starts", type=int, default=5, help="cold starts per server (default 5)")
    ap.add_argument("--keep", action="store_true", help="leave the namespace, nodes and cluster running")
    ap.add_argument("--markdown", type=Path, help="also write the tables to this file")
    args = ap.parse_args()
    for path in (GO_BINARY, TS_ENTRY):
        if not path.exists():
            raise SystemExit(
                f"{path} is missing: run `npm install kubernetes-mcp-server mcp-server-kubernetes` in {PEERS_DIR}"
            )
    tokenizer, count = token_counter()
    print(f"starting the {CLUSTER} test bed ...")
    bed = Bed(kubeconfig=testbed("up").splitlines()[-1], bin_dir=testbed("bin-dir"))
    work = Path(tempfile.mkdtemp(prefix="operate-mcp-peers-"))
    (work / "bare_server.py").write_text(BARE_SERVER)
    all_servers = servers(bed, work / "data", work / "bare_server.py")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.machine(),
    )
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    machine = f"{os.cpu_count()} vCPUs ({cpu}), {mem_gb:.0f} GB RAM, {platform.system()} {platform.release()}"
    sizes: dict[int, tuple[dict[str, dict[str, OpResult]], dict[str, int]]] = {}
    try:
        print("cold starts ...")
        starts = cold_starts(all_servers, args.starts)
        load_at_start = os.getloadavg()[0]
        bed.kubectl("apply", "-f", "-", stdin=nodes_manifest(BENCH_NODES, "peers-node"))
        bed.kubectl("create", "namespace", NAMESPACE, check=False)
        for pods in args.sizes:
            print(f"loading {pods} pods into {NAMESPACE} ...")
            logger_pod = load_namespace(bed, pods)
            time.sleep(5)  # let the controllers' and scheduler's events land
            ops = operations(logger_pod)
            per_server: dict[str, dict[str, OpResult]] = {}
            rss: dict[str, int] = {}
            for name in (OURS, *PEERS):
                print(f"  {name} ...", flush=True)
                server = all_servers[OURS_READS if name == OURS else name]
                per_server[name], rss[name] = asyncio.run(run_server(server, ops, args.runs, count))
            sizes[pods] = (per_server, rss)
        machine += f", load average {load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end"
        text = report(when, machine, versions(), tokenizer, starts, sizes, args.runs)
        print()
        print(text)
        if args.markdown:
            args.markdown.write_text(text)
    finally:
        if not args.keep:
            bed.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
            bed.kubectl("delete", "nodes", "-l", "operate-mcp.dev/bench=true", "--wait=false", check=False)
            testbed("down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
