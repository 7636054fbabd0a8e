"""What the tool loop records of each tool call, whoever provides the tool: for the record and the token bill."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ToolCall(BaseModel):
    name: str
    input: dict[str, Any]
    argv: list[str] | None = None  # the command a kubectl tool ran (or refused); None for other toolsets
    ok: bool
    is_error: bool = False
    duration_seconds: float = 0.0
    # Set by the toolset when no model can fix the failure (no cluster, bad credentials, the verb forbidden):
    # one sentence saying what is wrong and what to fix; the loop stops at the first such call.
    fatal: str | None = None
