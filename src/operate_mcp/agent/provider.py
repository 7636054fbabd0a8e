"""What the tool loop needs from a model, and nothing more: one turn at a time."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from operate_mcp.model.usage import TokenUsage


class TextBlock(BaseModel):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(BaseModel):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ModelTurn(BaseModel):
    content: list[TextBlock | ToolUseBlock]
    stop_reason: str | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)

    @property
    def tool_uses(self) -> list[ToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock)]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))


class Provider(Protocol):
    """A model behind the loop. `system` is the static prompt; `messages` are Anthropic-shaped."""

    name: str

    async def complete(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> ModelTurn: ...
