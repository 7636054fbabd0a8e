"""Time from the end of an execution to its anomaly, on the test bed (a benchmark, not a test).

    scripts/testbed up && eval "$(scripts/testbed env)"
    .venv/bin/python bench/anomaly_latency.py [--runs 3]

Each run: a Deployment of 2 ready pods; an approved update (the scripted provider stands in for the
hosted LLM; the person's approval is the MCP elicitation) whose new pods crash-loop (the bed's failure
switch); then it reports, from the moment the last command exited:

* validation done: the rollout wait stopped because the new pods fail, outcome checks failed;
* anomaly stored: the `failure_state` / `unexpected_restart` anomaly is in the anomaly store
  (`check_anomalies` returns it).

The execution's own steps are timed by the session (command outcomes); the anomaly's detection time is
the store's `detected_at`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import tempfile
import textwrap
import uuid
from datetime import datetime
from pathlib import Path

from mcp import Client
from mcp_types import ElicitResult

from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.config import Settings
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.server import create_server
from operate_mcp.workflows.sessions import SessionStore

CRASH = '{"spec":{"template":{"metadata":{"labels":{"testbed.operate-mcp.dev/fail":"crashloop"}}}}}'


def kubectl(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["kubectl", *args], input=stdin, text=True, check=True, capture_output=True)


def deployment(namespace: str) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: web, namespace: {namespace}}}
        spec:
          replicas: 2
          selector: {{matchLabels: {{app: web}}}}
          template:
            metadata: {{labels: {{app: web}}}}
            spec:
              containers: [{{name: web, image: "nginx:1.25.5"}}]
        """)


async def accept(context, params):  # type: ignore[no-untyped-def]
    return ElicitResult(action="accept", content={"approve": True, "justification": "bench"})


async def one_run(base: Path) -> tuple[float, float]:
    namespace = f"bench-anomaly-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", namespace)
    kubectl("apply", "-f", "-", stdin=deployment(namespace))
    kubectl("rollout", "status", "deployment/web", "-n", namespace, "--timeout=90s")
    data = base / namespace
    settings = Settings(
        data_dir=data / "data",
        approvers_dir=data / "approvers",
        approval_key_file=data / "approval.key",
        kubeconfig=Path(os.environ["KUBECONFIG"]),
        knowledge_enabled=False,
    )
    patch = ["kubectl", "patch", "deployment", "web", "-n", namespace, "-p", CRASH]
    provider = ScriptedProvider(
        [answer({"analysis": "new version", "commands": [{"argv": patch, "description": "v2"}]})]
    )
    server = create_server(settings, provider_factory=lambda s: provider, caller="bench")
    try:
        async with Client(server, elicitation_callback=accept) as client:
            proposed = await client.call_tool("operate", {"intent": "update web"})
            sid = proposed.structured_content["session_id"]
            await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
        session = SessionStore(settings.data_dir, 3600).load(sid)
        history = {h.to_status.value: h.at for h in session.history}
        commands_done = history["executing"].timestamp() + sum(o.duration_seconds for o in session.outcomes)
        validated = session.finished_at.timestamp() if session.finished_at else float("nan")
        found = AnomalyStore(settings.data_dir).query(namespace=namespace)
        first = min((a.detected_at for a in found), default=None)
        anomaly = first.timestamp() if isinstance(first, datetime) else float("nan")
        print(f"  {namespace}: status {session.status.value}; rules {sorted({a.rule for a in found})}")
        return validated - commands_done, anomaly - commands_done
    finally:
        kubectl("delete", "namespace", namespace, "--wait=false")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = [asyncio.run(one_run(Path(tmp))) for _ in range(args.runs)]
    validation = [v for v, _ in results]
    anomaly = [a for _, a in results]
    print(
        f"validation finished after the last command: median {statistics.median(validation):.1f}s "
        f"(runs: {', '.join(f'{v:.1f}' for v in validation)})"
    )
    print(
        f"anomaly stored after the last command:      median {statistics.median(anomaly):.1f}s "
        f"(runs: {', '.join(f'{a:.1f}' for a in anomaly)})"
    )


if __name__ == "__main__":
    main()
