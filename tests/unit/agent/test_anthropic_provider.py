"""The real anthropic SDK against a local Messages API server with recorded responses.

The hosted model is unreachable here; everything else is real: the SDK, HTTP, our loop,
our tools (kubectl fails to connect, which the loop must carry as a tool result).
"""

from __future__ import annotations

import pytest

from operate_mcp.agent.anthropic_provider import AnthropicProvider
from operate_mcp.agent.loop import run_loop
from operate_mcp.config import Settings
from operate_mcp.errors import AgentError, ConfigError
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.tools import TOOLS, ToolBox
from operate_mcp.model.proposal import ProposalDraft
from operate_mcp.prompts import load_prompt
from support.messages_api import MessagesAPI, recorded, serve


@pytest.fixture
def toolbox(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n"
    )
    return ToolBox(Kubectl(Settings(data_dir=tmp_path, kubeconfig=kubeconfig, command_timeout_seconds=10)))


async def test_system_prompt_is_the_static_file_marked_for_caching_and_only_safe_tools_are_offered(toolbox):
    api = MessagesAPI([recorded("tool_use_api_resources"), recorded("final_no_change")])
    with serve(api) as url:
        provider = AnthropicProvider(api_key="sk-test", model="claude-sonnet-5", max_tokens=1024, base_url=url)
        outcome = await run_loop(
            provider,
            system=load_prompt("operate-system"),
            user_message="<intent>scale api to 5</intent>",
            toolset=toolbox,
            output_model=ProposalDraft,
        )
    assert "nothing to scale" in outcome.result.analysis
    first, second = api.requests
    assert first["system"] == [
        {"type": "text", "text": load_prompt("operate-system"), "cache_control": {"type": "ephemeral"}}
    ]
    assert second["system"] == first["system"], "the cached prefix must be byte-identical across turns"
    offered = {t["name"] for t in first["tools"]}
    assert offered == {t.name for t in TOOLS}
    assert all(t.kind in ("read", "dry-run") for t in TOOLS)
    assert all(name.startswith(("kube_", "dry_run_")) for name in offered)
    assert first["messages"][0]["content"] == "<intent>scale api to 5</intent>"
    tool_result = second["messages"][-1]["content"][0]
    assert tool_result["type"] == "tool_result" and tool_result["tool_use_id"] == "toolu_01A09q90qw90lq917835lq9"
    sent = api.headers[0]
    assert sent.get("x-api-key") == "sk-test" or sent.get("authorization") == "Bearer sk-test"
    assert outcome.usage.cache_creation_input_tokens == 2130
    assert outcome.usage.cache_read_input_tokens == 2130
    assert outcome.usage.input_tokens == 942 and outcome.usage.output_tokens == 149


async def test_api_error_becomes_a_clear_agent_error(toolbox):
    api = MessagesAPI([])
    with serve(api) as url:
        provider = AnthropicProvider(api_key="sk-test", model="m", max_tokens=10, base_url=url)
        provider._client = provider._client.with_options(max_retries=0)
        with pytest.raises(AgentError, match="Anthropic API call failed"):
            await run_loop(provider, system="s", user_message="u", toolset=toolbox, output_model=ProposalDraft)


def test_missing_api_key_is_a_config_error_naming_the_variable():
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicProvider(api_key=None, model="m", max_tokens=10)
