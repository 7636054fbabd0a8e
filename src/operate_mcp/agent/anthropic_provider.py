"""The Anthropic Messages API behind the loop: Anthropic's API or a gateway speaking it, Amazon Bedrock, Google
Vertex AI — one provider, three clients of the same SDK, so the loop and the caching are the same everywhere.

Prompt caching: the tool definitions and the system prompt are the same bytes on every turn of every analysis
(static files and tables, no timestamps or ids), and the cache prefix is tools, then system. Both end in a cache
breakpoint: the system prompt's caches tools + prompt; the last tool's lets analyses with another system prompt
(remediate) share the tools. What the API reports as cache reads and writes is kept in `TokenUsage`.

Errors name the URL and the model: a 404 from a gateway is nearly always a wrong base URL or model id, and the
person reading the error has to know which of the two to fix.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any, Literal

from operate_mcp.agent.provider import ModelTurn, TextBlock, ToolUseBlock
from operate_mcp.config import Settings
from operate_mcp.errors import AgentError, ConfigError
from operate_mcp.model.usage import TokenUsage

AuthHeader = Literal["x-api-key", "bearer"]
Platform = Literal["anthropic", "bedrock", "vertex"]
CACHE: dict[str, str] = {"type": "ephemeral"}
DEFAULT_BASE_URL = "https://api.anthropic.com"
log = logging.getLogger(__name__)

# What to check when the API cannot be reached or has no such model, per platform.
_SETTINGS_HINT: dict[Platform, str] = {
    "anthropic": "OPERATE_MCP_ANTHROPIC_BASE_URL (the gateway's base URL, without /v1) and OPERATE_MCP_MODEL",
    "bedrock": "OPERATE_MCP_AWS_REGION and OPERATE_MCP_MODEL (a Bedrock model or inference profile id)",
    "vertex": "OPERATE_MCP_VERTEX_REGION, OPERATE_MCP_VERTEX_PROJECT_ID and OPERATE_MCP_MODEL (a Vertex AI model id)",
}
_CREDENTIALS_HINT: dict[Platform, str] = {
    "anthropic": "check the key (OPERATE_MCP_ANTHROPIC_API_KEY or ANTHROPIC_API_KEY) and how the gateway wants it "
    "sent (OPERATE_MCP_ANTHROPIC_AUTH_HEADER=x-api-key or bearer)",
    "bedrock": "check the AWS credentials (OPERATE_MCP_AWS_PROFILE, the AWS_* variables or AWS_BEARER_TOKEN_BEDROCK) "
    "and that the model is enabled for the account in that region",
    "vertex": "check the Google application default credentials (gcloud auth application-default login, or "
    "GOOGLE_APPLICATION_CREDENTIALS) and that the model is enabled in the project",
}


def normalise_base_url(url: str | None) -> str | None:
    """A gateway's base URL as the SDK wants it. The SDK appends /v1/messages itself, so a URL copied with its
    /v1 would call /v1/v1/messages (a 404 that looks like a wrong model): the /v1 is stripped, with a warning."""
    if url is None or not url.strip():
        return None
    url = url.strip().rstrip("/")
    if url.endswith("/v1"):
        log.warning(
            "the model API base URL %s ends in /v1; using %s, since /v1/messages is appended to it", url, url[:-3]
        )
        url = url[:-3]
    return url


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # the parent package (google) is missing
        return False


class AnthropicProvider:
    """A `Provider` over the anthropic SDK. `AnthropicProvider(...)` is Anthropic's API or a gateway;
    `AnthropicProvider.bedrock(...)` and `.vertex(...)` use the SDK's own clients for those platforms."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str,
        max_tokens: int,
        base_url: str | None = None,
        auth_header: AuthHeader = "x-api-key",
    ) -> None:
        if not api_key:
            raise ConfigError(
                "no Anthropic API key: set ANTHROPIC_API_KEY (or OPERATE_MCP_ANTHROPIC_API_KEY) "
                "in the environment the server runs in"
            )
        import anthropic  # lazy: listing tools never pays for the SDK

        url = normalise_base_url(base_url or os.environ.get("ANTHROPIC_BASE_URL"))
        if auth_header == "bearer":  # gateways that take `Authorization: Bearer <key>` and nothing else
            client: Any = anthropic.AsyncAnthropic(auth_token=api_key, base_url=url, max_retries=2)
        else:  # exactly one credential header, the Messages API's own: `x-api-key`
            client = anthropic.AsyncAnthropic(
                api_key=api_key,
                base_url=url,
                max_retries=2,
                default_headers={"X-Api-Key": api_key, "Authorization": anthropic.omit},  # type: ignore[dict-item]
            )
        self._use(client, platform="anthropic", model=model, max_tokens=max_tokens)
        self.auth_header = auth_header

    @classmethod
    def bedrock(
        cls, *, model: str, max_tokens: int, region: str | None = None, profile: str | None = None
    ) -> AnthropicProvider:
        """Amazon Bedrock: requests signed with boto3's credentials (the `bedrock` extra), or a Bedrock API key
        from AWS_BEARER_TOKEN_BEDROCK. The region: `region`, else AWS_REGION / AWS_DEFAULT_REGION / the profile's."""
        import anthropic  # lazy: as above

        try:
            client = anthropic.AsyncAnthropicBedrock(aws_region=region, aws_profile=profile, max_retries=2)
        except ValueError as exc:
            raise ConfigError(
                f"Amazon Bedrock is selected (OPERATE_MCP_PROVIDER=bedrock) but its client cannot be made: {exc} "
                "Set OPERATE_MCP_AWS_REGION (e.g. us-east-1), and OPERATE_MCP_AWS_PROFILE if a named profile is used"
            ) from exc
        provider = cls.__new__(cls)
        provider._use(client, platform="bedrock", model=model, max_tokens=max_tokens)
        if client.api_key is None and not _importable("boto3"):
            provider._missing = "bedrock"
        return provider

    @classmethod
    def vertex(
        cls, *, model: str, max_tokens: int, region: str | None = None, project_id: str | None = None
    ) -> AnthropicProvider:
        """Google Vertex AI: Google's application default credentials (the `vertex` extra). The region: `region`,
        else CLOUD_ML_REGION; the project: `project_id`, else the credentials' own project."""
        import anthropic  # lazy: as above

        try:
            client = anthropic.AsyncAnthropicVertex(
                region=region if region else anthropic.NOT_GIVEN,
                project_id=project_id if project_id else anthropic.NOT_GIVEN,
                max_retries=2,
            )
        except ValueError as exc:
            raise ConfigError(
                f"Google Vertex AI is selected (OPERATE_MCP_PROVIDER=vertex) but its client cannot be made: {exc} "
                "Set OPERATE_MCP_VERTEX_REGION (e.g. us-east5 or global) and OPERATE_MCP_VERTEX_PROJECT_ID"
            ) from exc
        provider = cls.__new__(cls)
        provider._use(client, platform="vertex", model=model, max_tokens=max_tokens)
        if not _importable("google.auth"):
            provider._missing = "vertex"
        return provider

    def _use(self, client: Any, *, platform: Platform, model: str, max_tokens: int) -> None:
        import anthropic  # lazy: as above

        self._client = client
        self._anthropic = anthropic
        self.platform: Platform = platform
        self.name = platform
        self.model = model
        self.max_tokens = max_tokens
        self.base_url = str(client.base_url).rstrip("/")
        self._missing: str | None = None  # the extra whose library this platform's auth needs and lacks

    async def complete(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        if self._missing is not None:
            raise ConfigError(
                f"OPERATE_MCP_PROVIDER={self.platform} needs the {self._missing!r} extra for its credentials: "
                f"pip install 'operate-mcp[{self._missing}]'"
            )
        cached_tools = [*tools[:-1], {**tools[-1], "cache_control": CACHE}] if tools else []
        errors = self._anthropic
        try:
            response = await self._client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=[{"type": "text", "text": system, "cache_control": CACHE}],
                tools=cached_tools,
                messages=messages,
            )
        except errors.NotFoundError as exc:
            raise AgentError(
                f"the model API at {self.base_url} answered 404 Not Found for model {self.model!r}: check "
                f"{_SETTINGS_HINT[self.platform]}. The API said: {_said(exc)}"
            ) from exc
        except (errors.AuthenticationError, errors.PermissionDeniedError) as exc:
            raise AgentError(
                f"the model API at {self.base_url} refused the credentials for model {self.model!r} "
                f"({exc.status_code}): {_CREDENTIALS_HINT[self.platform]}. The API said: {_said(exc)}"
            ) from exc
        except errors.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise AgentError(
                f"cannot reach the model API at {self.base_url} (model {self.model!r}): "
                f"{cause.__class__.__name__}: {cause}. Check {_SETTINGS_HINT[self.platform]}, and that the "
                "gateway is up and reachable from this machine"
            ) from exc
        except errors.APIError as exc:
            raise AgentError(
                f"the Anthropic API call failed at {self.base_url} (model {self.model!r}): "
                f"{exc.__class__.__name__}: {exc}"
            ) from exc
        except errors.AnthropicError as exc:  # e.g. a platform library missing after all
            raise AgentError(f"the {self.platform} client could not call the model API: {exc}".strip()) from exc
        blocks: list[TextBlock | ToolUseBlock] = []
        for block in response.content:
            if block.type == "text":
                blocks.append(TextBlock(text=block.text))
            elif block.type == "tool_use":
                blocks.append(ToolUseBlock(id=block.id, name=block.name, input=dict(block.input)))
        u = response.usage
        usage = TokenUsage(
            input_tokens=u.input_tokens,
            output_tokens=u.output_tokens,
            cache_creation_input_tokens=u.cache_creation_input_tokens or 0,
            cache_read_input_tokens=u.cache_read_input_tokens or 0,
        )
        return ModelTurn(content=blocks, stop_reason=response.stop_reason, usage=usage)


def _said(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return str(message)[:300]


def provider_from_settings(settings: Settings) -> AnthropicProvider:
    """The provider OPERATE_MCP_PROVIDER selects, configured from the settings (the server's default factory)."""
    if settings.provider == "bedrock":
        return AnthropicProvider.bedrock(
            model=settings.model, max_tokens=settings.max_tokens, region=settings.aws_region,
            profile=settings.aws_profile,
        )
    if settings.provider == "vertex":
        return AnthropicProvider.vertex(
            model=settings.model, max_tokens=settings.max_tokens, region=settings.vertex_region,
            project_id=settings.vertex_project_id,
        )
    return AnthropicProvider(
        api_key=settings.api_key(),
        model=settings.model,
        max_tokens=settings.max_tokens,
        base_url=settings.anthropic_base_url,
        auth_header=settings.anthropic_auth_header,
    )
