"""The tool loop's limits, driven by the scripted provider (the hosted LLM cannot run here)."""

from __future__ import annotations

import pytest

from operate_mcp.agent.loop import parse_answer, run_loop
from operate_mcp.agent.scripted import ScriptedProvider, answer, say, use
from operate_mcp.config import Settings
from operate_mcp.errors import AgentError
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.proposal import ProposalDraft
from operate_mcp.model.usage import TokenUsage

GOOD = {"analysis": "nothing to do", "commands": []}


@pytest.fixture
def toolbox(tmp_path):
    return ToolBox(Kubectl(Settings(data_dir=tmp_path)), tools=())


async def run(provider, toolbox, **kw):
    return await run_loop(
        provider, system="sys", user_message="do it", toolset=toolbox, output_model=ProposalDraft, **kw
    )


async def test_valid_answer_ends_the_loop_and_counts_tokens(toolbox):
    provider = ScriptedProvider([use("kube_get", {"resource": "pods"}), answer(GOOD)])
    outcome = await run(provider, toolbox)
    assert outcome.result.analysis == "nothing to do"
    assert outcome.iterations == 2
    assert outcome.usage == TokenUsage(input_tokens=100, output_tokens=30)
    assert [c.name for c in outcome.tool_calls] == ["kube_get"]


async def test_tool_errors_are_returned_to_the_model_not_raised(toolbox):
    provider = ScriptedProvider([use("kube_exec", {"cmd": "rm -rf /"}), answer(GOOD)])
    await run(provider, toolbox)
    result = provider.calls[1]["messages"][-1]["content"][0]
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert "unknown tool 'kube_exec'" in result["content"]


async def test_loop_stops_at_the_iteration_limit(toolbox):
    provider = ScriptedProvider([use("kube_get", {"resource": "pods"}, f"t{i}") for i in range(10)])
    with pytest.raises(AgentError, match="within 3 model turns"):
        await run(provider, toolbox, max_iterations=3)
    assert len(provider.calls) == 3


async def test_invalid_json_gets_one_repair_turn(toolbox):
    provider = ScriptedProvider([say("Here you go: {not: json}"), answer(GOOD)])
    outcome = await run(provider, toolbox)
    assert outcome.result.analysis == "nothing to do"
    repair = provider.calls[1]["messages"][-1]["content"]
    assert "not valid JSON" in repair


async def test_second_invalid_answer_is_a_clear_error(toolbox):
    provider = ScriptedProvider([say("no json here"), say('{"commands": []}')])
    with pytest.raises(AgentError, match=r"after one repair turn.*analysis: Field required"):
        await run(provider, toolbox)


async def test_validation_problems_go_back_to_the_model(toolbox):
    seen: list[int] = []

    async def validate(draft: ProposalDraft) -> list[str]:
        seen.append(len(draft.commands))
        return ["command 1 failed its dry-run"] if draft.analysis == "first" else []

    provider = ScriptedProvider([answer({"analysis": "first"}), answer({"analysis": "second"})])
    outcome = await run(provider, toolbox, check_answer=validate)
    assert outcome.result.analysis == "second"
    assert outcome.validation_rounds == 1
    assert "command 1 failed its dry-run" in provider.calls[1]["messages"][-1]["content"]


async def test_progress_is_reported_per_model_turn(toolbox):
    events: list[tuple[int, int]] = []

    async def progress(step: int, total: int, message: str) -> None:
        events.append((step, total))

    provider = ScriptedProvider([use("kube_get", {"resource": "pods"}), answer(GOOD)])
    await run(provider, toolbox, on_progress=progress, max_iterations=7)
    assert events == [(1, 7), (2, 7)]


@pytest.mark.parametrize(
    "text",
    [
        '{"analysis": "a"}',
        'Sure.\n```json\n{"analysis": "a"}\n```',
        'prefix {"analysis": "a"} suffix',
    ],
)
def test_answer_is_found_in_plain_fenced_or_wrapped_json(text):
    assert parse_answer(text, ProposalDraft).analysis == "a"
