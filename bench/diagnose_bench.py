"""`diagnose` of a namespace of 1,000 pods on the test bed (a benchmark, not a test).

    scripts/testbed up && eval "$(scripts/testbed env)"
    .venv/bin/python bench/diagnose_bench.py [--pods 1000] [--failing 20] [--runs 10] [--keep]

Adds fake nodes for the benchmark (tainted, so nothing else lands there), a Deployment of `--pods`
healthy pods and one of `--failing` crash-looping pods (the bed's failure switch, so findings, events
and previous-log reads are part of the work), waits until every pod is there, then times:

* `diagnose(reader, namespace=...)` in-process, `--runs` times after one warm-up (median, p95, min);
* `operate-mcp diagnose -n NS --format json` as a user runs it: a fresh process each time, bytecode
  cache on (PYTHONDONTWRITEBYTECODE unset), 3 runs.

Removes the namespace and the nodes at the end unless --keep.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from bench_shared import nodes_manifest

from operate_mcp.kube.reader import ClusterReader
from operate_mcp.workflows.diagnose import diagnose

NAMESPACE = "bench-diagnose"
NODES = 10  # 110 pods each, as the bed's nodes


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout


def deployment(name: str, replicas: int, fail: str | None) -> str:
    """Healthy pods go to the benchmark's nodes; crash-looping ones to the bed's own nodes, whose kubelet
    endpoint kwok serves (their previous logs are read)."""
    labels = f"{{app: {name}" + (f", testbed.operate-mcp.dev/fail: {fail}" if fail else "") + "}"
    lines = [
        "apiVersion: apps/v1",
        "kind: Deployment",
        f"metadata: {{name: {name}, namespace: {NAMESPACE}}}",
        "spec:",
        f"  replicas: {replicas}",
        f"  selector: {{matchLabels: {{app: {name}}}}}",
        "  template:",
        f"    metadata: {{labels: {labels}}}",
        "    spec:",
    ]
    if not fail:
        lines += [
            '      nodeSelector: {operate-mcp.dev/bench: "true"}',
            "      tolerations: [{key: operate-mcp.dev/bench, operator: Exists, effect: NoSchedule}]",
        ]
    lines.append('      containers: [{name: app, image: "registry.example/app:1.0"}]')
    return "\n".join(lines) + "\n"


def wait_for_pods(reader: ClusterReader, want: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = reader.list("pods", NAMESPACE).items
        running = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Running")
        print(f"  {len(pods)} pods, {running} running", end="\r", flush=True)
        if running >= want:
            print()
            return
        time.sleep(3)
    raise SystemExit(f"pods did not all run within {timeout:.0f}s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--failing", type=int, default=20)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    reader = ClusterReader(os.environ["KUBECONFIG"])
    kubectl("apply", "-f", "-", stdin=nodes_manifest(NODES))
    kubectl("create", "namespace", NAMESPACE, check=False)
    healthy = args.pods - args.failing
    kubectl(
        "apply",
        "-f",
        "-",
        stdin=deployment("web", healthy, None) + "---\n" + deployment("api", args.failing, "crashloop"),
    )
    print(f"waiting for {args.pods} pods in {NAMESPACE} ...")
    wait_for_pods(reader, healthy)
    time.sleep(10)  # let the crash loops restart at least once (previous logs, BackOff events)
    try:
        result = diagnose(reader, namespace=NAMESPACE)  # warm-up: connections, imports
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            result = diagnose(reader, namespace=NAMESPACE)
            times.append(time.perf_counter() - t0)
        pods = len(reader.list("pods", NAMESPACE).items)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * len(times)) - 1)]
        print(
            f"diagnose in-process: {pods} pods, {len(result.findings)} findings, "
            f"{sum(1 for f in result.findings for e in f.evidence if e.source == 'log')} log lines cited"
        )
        print(f"  median {statistics.median(times):.3f}s  p95 {p95:.3f}s  min {times[0]:.3f}s  ({args.runs} runs)")

        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cli = os.path.join(os.path.dirname(sys.executable), "operate-mcp")
        walls = []
        for _ in range(3):
            t0 = time.perf_counter()
            proc = subprocess.run(
                [cli, "diagnose", "-n", NAMESPACE, "--format", "json"],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            walls.append(time.perf_counter() - t0)
            reported = json.loads(proc.stdout)["duration_s"]
        print(
            f"operate-mcp diagnose (fresh process, exit {proc.returncode}): wall "
            + ", ".join(f"{w:.2f}s" for w in walls)
            + f"; its own duration_s {reported:.3f}s"
        )
    finally:
        if not args.keep:
            kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
            kubectl("delete", "nodes", "-l", "operate-mcp.dev/bench=true", "--wait=false", check=False)


if __name__ == "__main__":
    main()
