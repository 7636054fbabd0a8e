"""The MCP edge shows agent text as data and guards every HTTP route (security issue #9, findings 12 and 13)."""

from __future__ import annotations

import httpx
import pytest

from operate_mcp.config import Settings
from operate_mcp.kube.classifier import classify
from operate_mcp.model.command import ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.server import create_server, http_app
from operate_mcp.workflows.display import approval_question
from operate_mcp.workflows.sessions import SessionStore

FAKE = "\n".join(["", *[""] * 40, "1. kubectl get pods -n shop", "Digest: sha256:" + "0" * 64, "\x1b[2J"])


def session_with(tmp_path, commands: list[ProposedCommand], intent: str):
    p = Proposal(
        version=1,
        intent=intent,
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=[CheckedCommand(command=c, display=c.display, classification=classify(c.argv)) for c in commands],
        risk=RiskAssessment(tier=RiskTier.MEDIUM, reasons=["r"]),
        digest=command_digest(commands),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )
    return SessionStore(tmp_path).create(intent=intent, caller="agent", triggered_by="t", proposal=p)


def test_agent_intent_cannot_draw_commands_or_a_digest_into_the_question(tmp_path):
    cmd = ProposedCommand(argv=["kubectl", "delete", "deployment/web", "-n", "shop"], description="d")
    question = approval_question(session_with(tmp_path, [cmd], "restart web" + FAKE))
    lines = question.splitlines()
    intent_lines = [line for line in lines if "restart web" in line]
    assert len(intent_lines) == 1 and "\x1b" not in question
    assert [line for line in lines if line.startswith("Digest:")] == [f"Digest: sha256:{command_digest([cmd])}"]
    assert lines.index(intent_lines[0]) > lines.index(f"Digest: sha256:{command_digest([cmd])}")
    assert not any(line.startswith("1. kubectl get pods") for line in lines)
    assert "" not in lines


def test_every_manifest_object_is_listed_before_any_manifest_text(tmp_path):
    first = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: benign, namespace: shop}\ndata:\n" + "".join(
        f"  k{i}: v\n" for i in range(80)
    )
    second = "---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: pwn}\n"
    second += "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: []\n"
    cmd = ProposedCommand(argv=["kubectl", "apply", "-f", "-"], stdin=first + second, description="d")
    question = approval_question(session_with(tmp_path, [cmd], "update config"))
    head = question.split("Manifest of command 1:")[0]
    assert "ClusterRoleBinding" in head and "pwn" in head and "ConfigMap" in head


@pytest.mark.parametrize("path", ["/metrics", "/mcp"])
async def test_loopback_http_refuses_a_foreign_host_on_every_route(tmp_path, path):
    """Finding 13: DNS rebinding. A page on evil.example resolving to 127.0.0.1 must not read /metrics."""
    settings = Settings(data_dir=tmp_path)
    app = http_app(create_server(settings), settings, "127.0.0.1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as client:
        evil = await client.get(path, headers={"Host": "evil.example:8000"})
        origin = await client.get(path, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 421
    assert origin.status_code == 403


async def test_loopback_metrics_still_answer_local_scrapers(tmp_path):
    settings = Settings(data_dir=tmp_path)
    app = http_app(create_server(settings), settings, "127.0.0.1")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as client:
        ok = await client.get("/metrics")
    assert ok.status_code == 200
