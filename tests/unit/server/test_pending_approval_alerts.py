"""A session waiting for a person's approval has not failed: no alert line and no webhook call for it
(issue #14, item 9), while a real failure still alerts. Real MCP client session, real local webhook."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from mcp import Client

from operate_mcp.config import Settings
from operate_mcp.kube.classifier import classify
from operate_mcp.model.command import ProposedCommand, command_digest
from operate_mcp.model.proposal import CheckedCommand, Proposal, ProposedChanges, RiskAssessment, RiskTier
from operate_mcp.records.alerts import ALERTS_FILE
from operate_mcp.server import create_server
from operate_mcp.workflows.sessions import SessionStore


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    received: list[bytes] = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(self.rfile.read(int(self.headers.get("content-length", 0))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def settings_for(tmp_path, url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        approvers_dir=tmp_path / "config" / "approvers",
        approval_key_file=tmp_path / "config" / "approval.key",
        knowledge_enabled=False,
        alert_webhook_url=url,
    )


def medium_session(settings: Settings) -> str:
    cmd = ProposedCommand(
        argv=["kubectl", "set", "image", "deployment/web", "web=nginx:1.27.3", "-n", "shop"], description="d"
    )
    proposal = Proposal(
        version=1,
        intent="update web",
        analysis="a",
        current_state="",
        changes=ProposedChanges(),
        commands=[CheckedCommand(command=cmd, display=cmd.display, classification=classify(cmd.argv))],
        risk=RiskAssessment(tier=RiskTier.MEDIUM, reasons=["image"]),
        digest=command_digest([cmd]),
        iterations=1,
        prompt_sha256="0" * 64,
        provider="scripted",
    )
    store = SessionStore(settings.data_dir)
    return store.create(intent="update web", caller="agent", triggered_by="t", proposal=proposal).id


async def test_a_pending_approval_is_not_alerted(tmp_path, webhook):
    url, received = webhook
    settings = settings_for(tmp_path, url)
    sid = medium_session(settings)
    async with Client(create_server(settings)) as client:  # no elicitation: the person approves in a terminal
        result = await client.call_tool("operate", {"sessionId": sid, "executeChoice": 1})
    assert result.is_error and "needs a person's approval" in result.content[0].text
    assert not (settings.data_dir / ALERTS_FILE).exists()
    assert received == []


async def test_a_real_failure_is_still_alerted(tmp_path, webhook):
    url, received = webhook
    settings = settings_for(tmp_path, url)
    async with Client(create_server(settings)) as client:
        await client.call_tool("operate", {"sessionId": "opr-1767225600000-1a2b3c4d", "executeChoice": 1})
    assert "opr-1767225600000-1a2b3c4d" in (settings.data_dir / ALERTS_FILE).read_text()
    for _ in range(50):
        if received:
            break
        threading.Event().wait(0.1)
    assert received and b"opr-1767225600000-1a2b3c4d" in received[0]
