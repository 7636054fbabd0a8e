"""The Anthropic Messages API behind the loop, with the static system prompt marked for caching."""

from __future__ import annotations

from typing import Any

from operate_mcp.agent.provider import ModelTurn, TextBlock, ToolUseBlock
from operate_mcp.errors import AgentError, ConfigError
from operate_mcp.model.usage import TokenUsage


class AnthropicProvider:
    name = "anthropic"

    def __init__(self, *, api_key: str | None, model: str, max_tokens: int, base_url: str | None = None) -> None:
        if not api_key:
            raise ConfigError(
                "no Anthropic API key: set ANTHROPIC_API_KEY (or OPERATE_MCP_ANTHROPIC_API_KEY) "
                "in the environment the server runs in"
            )
        import anthropic  # imported here so listing tools never pays for it

        self._client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url, max_retries=2)
        self._errors: tuple[type[Exception], ...] = (anthropic.APIError,)
        self.model = model
        self.max_tokens = max_tokens

    async def complete(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        # The system prompt is the same bytes on every call, so it is cached; the tools come
        # before it in the cache prefix and are static too.
        try:
            response = await self._client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                tools=tools,  # type: ignore[arg-type]
                messages=messages,  # type: ignore[arg-type]
            )
        except self._errors as exc:
            raise AgentError(f"the Anthropic API call failed: {exc.__class__.__name__}: {exc}") from exc
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
