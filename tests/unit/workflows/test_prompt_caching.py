"""Prompt caching that hits: across analyses of different intents the system prompt and the tool definitions
are the same bytes, both marked for caching; the cache reads and writes the API reports land in the proposal's
token usage and in the Prometheus metrics.

The real anthropic SDK talks to the local Messages API server; the model sees the kubectl tools' real
definitions (answered from recorded output: there is no cluster in a unit test)."""

from __future__ import annotations

import json
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from operate_mcp.agent.anthropic_provider import AnthropicProvider
from operate_mcp.config import Settings
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import ToolBox
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.prompts import load_prompt
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.workflows.operate import OperateDeps, analyze
from operate_mcp.workflows.sessions import SessionStore
from support.messages_api import MessagesAPI, recorded, serve


class RecordedKubectlTools:
    """The kubectl toolset's definitions, its answers recorded (a Toolset that is not the ToolBox, so the
    analysis makes no cluster preflight)."""

    def __init__(self, toolbox: ToolBox) -> None:
        self.toolbox = toolbox

    def definitions(self) -> list[dict[str, Any]]:
        return self.toolbox.definitions()

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        return "NAME SHORTNAMES APIVERSION\nhorizontalpodautoscalers hpa autoscaling/v2", ToolCall(
            name=name, input=arguments, ok=True
        )


def with_usage(name: str, **usage: int) -> dict[str, Any]:
    response = recorded(name)
    return {**response, "usage": {**response["usage"], **usage}}


async def test_two_analyses_send_byte_identical_cached_system_and_tools_and_count_the_cache(tmp_path):
    settings = Settings(data_dir=tmp_path, kubectl=str(tmp_path / "no-kubectl"), knowledge_enabled=False)
    kubectl = Kubectl(settings)
    api = MessagesAPI(
        [
            recorded("tool_use_api_resources"),  # first analysis: writes the cache (2130 tokens)
            recorded("final_no_change"),  # reads it
            with_usage("final_no_change", cache_read_input_tokens=2130, input_tokens=301),  # second analysis
        ]
    )
    metrics = RunMetrics()
    with serve(api) as url:
        provider = AnthropicProvider(api_key="sk-test", model="claude-sonnet-5", max_tokens=1024, base_url=url)
        deps = OperateDeps(
            settings=settings, kubectl=kubectl, provider=provider, sessions=SessionStore(tmp_path), metrics=metrics
        )
        deps.toolset = RecordedKubectlTools(ToolBox(kubectl))
        first = await analyze(deps, "scale api in shop to 5", caller="alice", triggered_by="test")
        second = await analyze(deps, "why does checkout keep restarting?", caller="bob", triggered_by="test")

    assert len(api.requests) == 3
    intents = [r["messages"][0]["content"] for r in (api.requests[0], api.requests[2])]
    assert "scale api" in intents[0] and "checkout" in intents[1], "the intents differ ..."
    systems = {json.dumps(r["system"]) for r in api.requests}
    tools = {json.dumps(r["tools"]) for r in api.requests}
    assert len(systems) == 1 and len(tools) == 1, "... and the cached prefix does not"
    [system] = api.requests[0]["system"]
    assert system == {"type": "text", "text": load_prompt("operate-system"), "cache_control": {"type": "ephemeral"}}
    sent_tools = api.requests[0]["tools"]
    assert [t["name"] for t in sent_tools] == [t["name"] for t in ToolBox(kubectl).definitions()]
    assert sent_tools[-1]["cache_control"] == {"type": "ephemeral"}, "the tools are a cache breakpoint of their own"
    assert all("cache_control" not in t for t in sent_tools[:-1])

    assert first.proposal.token_usage.cache_creation_input_tokens == 2130
    assert first.proposal.token_usage.cache_read_input_tokens == 2130
    assert second.proposal.token_usage.cache_creation_input_tokens == 0
    assert second.proposal.token_usage.cache_read_input_tokens == 2130

    exported = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }
    tokens = "operate_mcp_model_tokens_total"
    assert exported[(tokens, (("purpose", "operate"), ("type", "cache_read")))] == 4260
    assert exported[(tokens, (("purpose", "operate"), ("type", "cache_creation")))] == 2130
    assert exported[(tokens, (("purpose", "operate"), ("type", "input")))] == 412 + 530 + 301
    assert exported[("operate_mcp_analyses_total", (("purpose", "operate"),))] == 2


def test_the_token_series_exist_before_the_first_analysis():
    """rate() over the cache counters works from the first scrape."""
    text = RunMetrics().render().decode()
    for kind in ("input", "output", "cache_read", "cache_creation"):
        assert f'operate_mcp_model_tokens_total{{purpose="operate",type="{kind}"}} 0.0' in text
