"""A provider that plays back a script: the stand-in for the hosted LLM in tests.

Each step is either a fixed ModelTurn or a function of the conversation so far, so a
script can react to what the tools returned (e.g. fix a manifest the API server rejected).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from operate_mcp.agent.provider import ModelTurn, TextBlock, ToolUseBlock
from operate_mcp.errors import AgentError
from operate_mcp.model.usage import TokenUsage

Step = ModelTurn | Callable[[list[dict[str, Any]]], ModelTurn]


def say(text: str) -> ModelTurn:
    return ModelTurn(content=[TextBlock(text=text)], stop_reason="end_turn", usage=TokenUsage(output_tokens=10))


def answer(proposal: dict[str, Any]) -> ModelTurn:
    return say(json.dumps(proposal))


def use(name: str, tool_input: dict[str, Any], call_id: str | None = None) -> ModelTurn:
    block = ToolUseBlock(
        id=call_id or f"toolu_{name}_{abs(hash(json.dumps(tool_input, sort_keys=True))) % 10**8}",
        name=name,
        input=tool_input,
    )
    return ModelTurn(content=[block], stop_reason="tool_use", usage=TokenUsage(input_tokens=100, output_tokens=20))


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Everything the last user turn said: tool results and plain text alike."""
    content = messages[-1]["content"]
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content:
        if block.get("type") == "text":
            parts.append(block["text"])
        elif block.get("type") == "tool_result":
            inner = block.get("content")
            parts.append(inner if isinstance(inner, str) else json.dumps(inner))
    return "\n".join(parts)


class ScriptedProvider:
    name = "scripted"

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.calls: list[dict[str, Any]] = []

    async def complete(self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> ModelTurn:
        self.calls.append({"system": system, "messages": json.loads(json.dumps(messages)), "tools": tools})
        if not self.steps:
            raise AgentError(
                f"scripted provider ran out of steps; the last message was: {last_user_text(messages)[:800]}"
            )
        step = self.steps.pop(0)
        return step(messages) if callable(step) else step
