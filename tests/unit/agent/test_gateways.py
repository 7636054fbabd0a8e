"""Model gateways and providers: the real anthropic SDK against the local Messages API server (base URL, auth
header, model id, errors naming the URL and the model), and Bedrock / Vertex AI clients built from settings."""

from __future__ import annotations

import importlib.util
import logging
import socket
from typing import Any

import anthropic
import pytest

from operate_mcp.agent.anthropic_provider import AnthropicProvider, provider_from_settings
from operate_mcp.config import load_settings
from operate_mcp.errors import AgentError, ConfigError
from support.messages_api import MessagesAPI, recorded, serve

USER = [{"role": "user", "content": "scale api to 5"}]
TOOLS = [{"name": "kube_get", "description": "Read objects.", "input_schema": {"type": "object"}}]


class Gateway(MessagesAPI):
    """The local Messages API as a gateway: it knows some model ids and may want `Authorization: Bearer`."""

    def __init__(self, models: set[str], *, bearer: str | None = None) -> None:
        super().__init__([recorded("final_no_change")] * 4)
        self.models, self.bearer = models, bearer

    def handle(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.bearer is not None and headers.get("authorization") != f"Bearer {self.bearer}":
            self.requests.append(body)
            return 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid bearer"}}
        if body.get("model") not in self.models:
            self.requests.append(body)
            return 404, {"type": "error", "error": {"type": "not_found_error", "message": f"model: {body['model']}"}}
        return super().handle(body, headers)


def quick(provider: AnthropicProvider) -> AnthropicProvider:
    """No retries: an error test should not wait for the SDK's backoff."""
    provider._client = provider._client.with_options(max_retries=0)
    return provider


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for name in (
        "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL", "AWS_REGION", "AWS_DEFAULT_REGION",
        "AWS_PROFILE", "AWS_BEARER_TOKEN_BEDROCK", "ANTHROPIC_BEDROCK_BASE_URL", "CLOUD_ML_REGION",
        "ANTHROPIC_VERTEX_BASE_URL", "ANTHROPIC_VERTEX_PROJECT_ID",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path))
    return monkeypatch


async def test_a_base_url_with_v1_is_accepted_and_stripped_with_a_note(clean_env, caplog):
    api = Gateway({"claude-sonnet-5"})
    with serve(api) as url, caplog.at_level(logging.WARNING):
        provider = AnthropicProvider(api_key="sk-test", model="claude-sonnet-5", max_tokens=64, base_url=f"{url}/v1/")
        turn = await provider.complete(system="s", messages=USER, tools=TOOLS)
    assert provider.base_url == url
    assert "nothing to scale" in turn.text
    assert any("ends in /v1" in r.getMessage() for r in caplog.records)


async def test_the_key_goes_in_x_api_key_by_default_and_as_a_bearer_token_when_configured(clean_env):
    api = Gateway({"claude-sonnet-5"})
    with serve(api) as url:
        for header in ("x-api-key", "bearer"):
            clean_env.setenv("OPERATE_MCP_ANTHROPIC_AUTH_HEADER", header)
            settings = load_settings(anthropic_api_key="sk-gw", anthropic_base_url=url)
            await provider_from_settings(settings).complete(system="s", messages=USER, tools=TOOLS)
    by_key, by_bearer = api.headers
    assert by_key.get("x-api-key") == "sk-gw" and "authorization" not in by_key
    assert by_bearer.get("authorization") == "Bearer sk-gw" and "x-api-key" not in by_bearer


async def test_a_gateway_that_wants_a_bearer_token_names_the_auth_setting_when_refused(clean_env):
    api = Gateway({"claude-sonnet-5"}, bearer="sk-gw")
    with serve(api) as url:
        provider = quick(AnthropicProvider(api_key="sk-gw", model="claude-sonnet-5", max_tokens=64, base_url=url))
        with pytest.raises(AgentError) as refused:
            await provider.complete(system="s", messages=USER, tools=TOOLS)
    assert url in str(refused.value) and "OPERATE_MCP_ANTHROPIC_AUTH_HEADER" in str(refused.value)


async def test_the_model_id_is_the_one_configured(clean_env):
    """Gateways and platforms name models their own way: OPERATE_MCP_MODEL is sent as it is."""
    api = Gateway({"anthropic/claude-sonnet-5"})
    clean_env.setenv("OPERATE_MCP_MODEL", "anthropic/claude-sonnet-5")
    with serve(api) as url:
        settings = load_settings(anthropic_api_key="sk-test", anthropic_base_url=url)
        provider = provider_from_settings(settings)
        await provider.complete(system="s", messages=USER, tools=TOOLS)
    assert api.requests[0]["model"] == "anthropic/claude-sonnet-5"


async def test_an_unknown_model_is_an_error_naming_the_url_and_the_model(clean_env):
    api = Gateway({"claude-sonnet-5"})
    with serve(api) as url:
        provider = quick(AnthropicProvider(api_key="sk-test", model="claude-typo-9", max_tokens=64, base_url=url))
        with pytest.raises(AgentError) as missing:
            await provider.complete(system="s", messages=USER, tools=TOOLS)
    message = str(missing.value)
    assert "404" in message and url in message and "'claude-typo-9'" in message
    assert "OPERATE_MCP_MODEL" in message and "OPERATE_MCP_ANTHROPIC_BASE_URL" in message


async def test_a_refused_connection_is_an_error_naming_the_url(clean_env):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    provider = quick(AnthropicProvider(api_key="sk-test", model="claude-sonnet-5", max_tokens=64, base_url=url))
    with pytest.raises(AgentError) as unreachable:
        await provider.complete(system="s", messages=USER, tools=TOOLS)
    message = str(unreachable.value)
    assert message.startswith(f"cannot reach the model API at {url}") and "'claude-sonnet-5'" in message


def test_bedrock_is_the_sdks_bedrock_client_in_the_configured_region(clean_env):
    clean_env.setenv("OPERATE_MCP_PROVIDER", "bedrock")
    clean_env.setenv("OPERATE_MCP_AWS_REGION", "eu-central-1")
    clean_env.setenv("OPERATE_MCP_AWS_PROFILE", "ops")
    clean_env.setenv("OPERATE_MCP_MODEL", "eu.anthropic.claude-sonnet-5-v1:0")
    provider = provider_from_settings(load_settings())
    client = provider._client
    assert isinstance(client, anthropic.AsyncAnthropicBedrock)
    assert client.aws_region == "eu-central-1" and client.aws_profile == "ops"
    assert str(client.base_url).rstrip("/") == "https://bedrock-runtime.eu-central-1.amazonaws.com"
    assert provider.name == "bedrock" and provider.model == "eu.anthropic.claude-sonnet-5-v1:0"


def test_bedrock_without_a_region_is_a_config_error_naming_the_setting(clean_env):
    clean_env.setenv("OPERATE_MCP_PROVIDER", "bedrock")
    with pytest.raises(ConfigError, match="OPERATE_MCP_AWS_REGION"):
        provider_from_settings(load_settings())


@pytest.mark.skipif(importlib.util.find_spec("boto3") is not None, reason="boto3 is installed here")
async def test_bedrock_without_boto3_says_which_extra_to_install_before_any_request(clean_env):
    provider = AnthropicProvider.bedrock(model="m", max_tokens=64, region="us-east-1")
    with pytest.raises(ConfigError, match=r"operate-mcp\[bedrock\]"):
        await provider.complete(system="s", messages=USER, tools=TOOLS)


def test_vertex_is_the_sdks_vertex_client_for_the_configured_region_and_project(clean_env):
    clean_env.setenv("OPERATE_MCP_PROVIDER", "vertex")
    clean_env.setenv("OPERATE_MCP_VERTEX_REGION", "us-east5")
    clean_env.setenv("OPERATE_MCP_VERTEX_PROJECT_ID", "shop-prod")
    clean_env.setenv("OPERATE_MCP_MODEL", "claude-sonnet-5@20260101")
    provider = provider_from_settings(load_settings())
    client = provider._client
    assert isinstance(client, anthropic.AsyncAnthropicVertex)
    assert client.region == "us-east5" and client.project_id == "shop-prod"
    assert str(client.base_url).rstrip("/") == "https://us-east5-aiplatform.googleapis.com/v1"
    assert provider.name == "vertex" and provider.model == "claude-sonnet-5@20260101"


def test_vertex_without_a_region_is_a_config_error_naming_the_setting(clean_env):
    clean_env.setenv("OPERATE_MCP_PROVIDER", "vertex")
    with pytest.raises(ConfigError, match="OPERATE_MCP_VERTEX_REGION"):
        provider_from_settings(load_settings())


def test_an_unknown_provider_is_refused_with_the_choices(clean_env):
    clean_env.setenv("OPERATE_MCP_PROVIDER", "openai")
    with pytest.raises(ConfigError, match="bedrock"):
        load_settings()
