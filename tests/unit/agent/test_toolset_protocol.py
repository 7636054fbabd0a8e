"""The loop sees tools only through the Toolset protocol: any toolset runs in it, the kubectl ToolBox is
one, and workflows hand theirs in."""

from __future__ import annotations

import subprocess
import sys
from typing import Any, ClassVar

from operate_mcp.agent.loop import run_loop
from operate_mcp.agent.scripted import ScriptedProvider, answer, use
from operate_mcp.agent.toolset import Toolset
from operate_mcp.config import Settings
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.proposal import ProposalDraft
from operate_mcp.model.session import SessionStatus
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.sessions import SessionStore

NOTHING = {"analysis": "the runbook says to wait", "commands": []}


class Runbooks:
    """A toolset that is not kubectl: looks up runbook pages from a dict."""

    PAGES: ClassVar[dict[str, str]] = {"crashloop": "Check the previous container's logs first."}

    def __init__(self) -> None:
        self.asked: list[dict[str, Any]] = []

    def definitions(self) -> list[dict[str, Any]]:
        schema = {"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]}
        return [{"name": "runbook", "description": "Read a runbook page.", "input_schema": schema}]

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        self.asked.append(arguments)
        page = self.PAGES.get(str(arguments.get("topic")))
        if name != "runbook" or page is None:
            return f"no runbook for {arguments}", ToolCall(name=name, input=arguments, ok=False, is_error=True)
        return page, ToolCall(name=name, input=arguments, ok=True)


async def test_the_loop_runs_a_toolset_that_is_not_kubectl():
    runbooks = Runbooks()
    provider = ScriptedProvider([use("runbook", {"topic": "crashloop"}), answer(NOTHING)])
    outcome = await run_loop(provider, system="s", user_message="u", toolset=runbooks, output_model=ProposalDraft)
    assert outcome.result.analysis == "the runbook says to wait"
    assert [c.name for c in outcome.tool_calls] == ["runbook"] and outcome.tool_calls[0].argv is None
    assert provider.calls[0]["tools"] == runbooks.definitions()
    result = provider.calls[1]["messages"][-1]["content"][0]
    assert result["content"] == "Check the previous container's logs first." and result["is_error"] is False


async def test_a_toolsets_refusal_reaches_the_model_as_an_error():
    provider = ScriptedProvider([use("runbook", {"topic": "dns"}), answer(NOTHING)])
    await run_loop(provider, system="s", user_message="u", toolset=Runbooks(), output_model=ProposalDraft)
    result = provider.calls[1]["messages"][-1]["content"][0]
    assert result["is_error"] is True and "no runbook" in result["content"]


def test_the_kubectl_toolbox_is_a_toolset(tmp_path):
    toolbox = ToolBox(Kubectl(Settings(data_dir=tmp_path)))
    assert isinstance(toolbox, Toolset)
    assert isinstance(Runbooks(), Toolset)


def test_the_agent_loop_does_not_import_kube():
    code = (
        "import sys, operate_mcp.agent.loop, operate_mcp.agent.scripted\n"
        "print(sorted(m for m in sys.modules if m.startswith('operate_mcp.kube')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_operate_hands_its_toolset_to_the_analysis(tmp_path):
    """The workflow decides which tools the model gets; replacing `deps.toolset` changes them."""
    settings = Settings(data_dir=tmp_path, kubectl=str(tmp_path / "no-kubectl"), knowledge_enabled=False)
    provider = ScriptedProvider([use("runbook", {"topic": "crashloop"}), answer(NOTHING)])
    deps = OperateDeps(settings=settings, kubectl=Kubectl(settings), provider=provider,
                       sessions=SessionStore(settings.data_dir))
    assert isinstance(deps.toolset, ToolBox)  # kubectl reads and dry-runs by default
    deps.toolset = runbooks = Runbooks()
    session = await analyze(deps, "api keeps restarting", caller="alice", triggered_by="test")
    assert session.status is SessionStatus.PROPOSED
    assert runbooks.asked == [{"topic": "crashloop"}]
    assert [t["name"] for t in provider.calls[0]["tools"]] == ["runbook"]
