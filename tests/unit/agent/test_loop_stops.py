"""The loop stops at the first tool call no model can fix, instead of spending every turn on it."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.agent.loop import ToolFailed, run_loop
from operate_mcp.agent.provider import ModelTurn, ToolUseBlock
from operate_mcp.agent.scripted import ScriptedProvider, answer, use
from operate_mcp.config import Settings
from operate_mcp.errors import AgentError
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.proposal import ProposalDraft
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.model.usage import TokenUsage

NOTHING = {"analysis": "nothing to do", "commands": []}
NO_CLUSTER = "kubectl cannot reach the cluster (kubeconfig /k): connection refused; start the cluster"


class Broken:
    """A toolset whose every call fails in a way no model can fix."""

    def __init__(self) -> None:
        self.called: list[str] = []

    def definitions(self) -> list[dict[str, Any]]:
        return [{"name": "probe", "description": "d", "input_schema": {"type": "object"}}]

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        self.called.append(name)
        return NO_CLUSTER, ToolCall(name=name, input=arguments, ok=False, is_error=True, fatal=NO_CLUSTER)


def two_tools_at_once() -> ModelTurn:
    blocks = [ToolUseBlock(id="a", name="probe", input={}), ToolUseBlock(id="b", name="probe", input={})]
    return ModelTurn(content=blocks, stop_reason="tool_use", usage=TokenUsage(input_tokens=1))


async def test_a_fatal_tool_call_stops_the_loop_after_the_first_model_turn():
    toolset = Broken()
    provider = ScriptedProvider([two_tools_at_once()] + [use("probe", {}, f"t{i}") for i in range(29)])
    with pytest.raises(ToolFailed) as raised:
        await run_loop(provider, system="s", user_message="u", toolset=toolset, output_model=ProposalDraft)
    assert str(raised.value) == NO_CLUSTER and isinstance(raised.value, AgentError)
    assert len(provider.calls) == 1
    assert toolset.called == ["probe"]  # not even the second call of the same turn


async def test_an_ordinary_tool_error_still_goes_back_to_the_model(tmp_path):
    provider = ScriptedProvider([use("kube_exec", {}), answer(NOTHING)])
    toolbox = ToolBox(Kubectl(Settings(data_dir=tmp_path)), tools=())
    outcome = await run_loop(provider, system="s", user_message="u", toolset=toolbox, output_model=ProposalDraft)
    assert outcome.result.analysis == "nothing to do" and len(provider.calls) == 2


async def test_the_kubectl_toolbox_marks_no_cluster_as_fatal(tmp_path: Path):
    """Real kubectl, a server that refuses connections: the first kube_get ends the analysis with a sentence."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        config = tmp_path / "kubeconfig"
        config.write_text(
            "apiVersion: v1\nkind: Config\n"
            f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{s.getsockname()[1]}'}}}}]\n"
            "contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n"
            "users: [{name: u, user: {token: t}}]\n"
        )
        toolbox = ToolBox(Kubectl(Settings(data_dir=tmp_path / "data", kubeconfig=config)))
        provider = ScriptedProvider([use("kube_get", {"resource": "pods"}, f"t{i}") for i in range(30)])
        with pytest.raises(ToolFailed, match=rf"cannot reach the cluster \(kubeconfig {config}\): connection refused"):
            await run_loop(provider, system="s", user_message="u", toolset=toolbox, output_model=ProposalDraft)
    assert len(provider.calls) == 1
