"""Red team of the read tools' text block (server/tools/cluster.py `data_text`), on the bed: the block the model
reads is the data alone, and no credential the redactor masks elsewhere reaches it, whatever way the read ends.

What held: a read that times out answers over MCP with its reason, not its output; the unwrap takes exactly
`wrap_untrusted`'s block (an inner `<cluster-data ...>` or closing is broken before wrapping, so the greedy match
cannot end early), empty output reads `[no output]`, and a cut answer's last line says how to narrow it (the cap
cuts before `inert`, so no escape is split).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

from mcp import Client

from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.server import create_server
from support.manifests import bed_settings

ARG_PASSWORD = "slow-pa55-value"


def _hanging_kubectl(tmp_path: Path, real: str) -> Path:
    """The real kubectl, whose process then does not exit: what a stalled API connection or a slow exec
    credential plugin looks like to the runner (its output is complete, the command times out)."""
    script = tmp_path / "kubectl"
    script.write_text(
        f"#!{sys.executable}\nimport subprocess, sys, time\n"
        f"subprocess.run([{real!r}, *sys.argv[1:]])\nsys.stdout.flush()\ntime.sleep(60)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def _slow_deployment(testbed: Any, namespace: str) -> None:
    container = {"name": "web", "image": "nginx:1.27", "args": ["--db-password", ARG_PASSWORD]}
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "slow", "namespace": namespace},
                  "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "slow"}},
                           "template": {"metadata": {"labels": {"app": "slow"}}, "spec": {"containers": [container]}}}}
    testbed.kubectl_run("apply", "-f", "-", stdin=json.dumps(deployment))


async def test_a_read_tool_that_times_out_shows_no_credential_in_its_text_block(
    testbed: Any, namespace: str, tmp_path: Path
) -> None:
    """Held: a timed-out read is a fatal problem over MCP, answered with its reason and without the output."""
    _slow_deployment(testbed, namespace)
    settings = bed_settings(testbed, tmp_path, command_timeout_seconds=5, knowledge_enabled=False)
    settings = settings.model_copy(update={"kubectl": str(_hanging_kubectl(tmp_path, str(testbed.kubectl)))})
    async with Client(create_server(settings)) as client:
        result = await client.call_tool(
            "kube_describe", {"resource": "deployment", "name": "slow", "namespace": namespace}
        )
    shown = json.dumps([c.model_dump() for c in result.content]) + json.dumps(result.structured_content)
    assert result.is_error and ARG_PASSWORD not in shown, shown


def test_the_models_read_tool_that_times_out_shows_no_credential(
    testbed: Any, namespace: str, tmp_path: Path
) -> None:
    """Broke: kube/runner.py redacts a finished command's output but returns a timed-out command's partial stdout
    as it was; the same describe, through the toolbox `operate` and `remediate` hand the model, showed the
    `--db-password <value>` args."""
    _slow_deployment(testbed, namespace)
    settings = bed_settings(testbed, tmp_path, command_timeout_seconds=5, knowledge_enabled=False)
    settings = settings.model_copy(update={"kubectl": str(_hanging_kubectl(tmp_path, str(testbed.kubectl)))})
    text, _ = ToolBox(Kubectl(settings)).call(
        "kube_describe", {"resource": "deployment", "name": "slow", "namespace": namespace}
    )
    assert "slow" in text  # the describe did run
    assert ARG_PASSWORD not in text, text
