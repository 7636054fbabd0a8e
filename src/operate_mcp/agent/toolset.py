"""What the loop needs from tools, and nothing more: definitions for the model, and a call.

The loop never knows which tools it runs (kubectl reads and dry-runs today, others tomorrow); a
workflow builds a toolset and hands it in, so adding a data source never edits the loop.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from operate_mcp.model.tool_call import ToolCall


@runtime_checkable
class Toolset(Protocol):
    def definitions(self) -> list[dict[str, Any]]:
        """Anthropic-shaped tool definitions: `name`, `description`, `input_schema`."""
        ...

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        """Run one tool: the text the model sees, and what the record keeps.

        Never raises for what the model got wrong (unknown tool, bad arguments, a refusal): that is
        returned as text with `ToolCall.is_error`, so the model can correct itself. Runs in a worker
        thread; it may block.
        """
        ...
