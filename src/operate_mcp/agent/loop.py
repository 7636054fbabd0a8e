"""The tool loop: the model works through the tools it is handed until it answers with valid JSON.

Limits are enforced here, not in the prompt: a maximum number of model turns, one repair
turn for an answer that is not valid JSON, and validation by code that can send a
proposal back to the model with the reasons it failed. Which tools exist is not the loop's
business: the caller hands in a Toolset (agent/toolset.py). A tool call the toolset marks `fatal`
(a failure no model can fix, such as no cluster or missing credentials) ends the loop at once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
from pydantic import BaseModel, Field, ValidationError

from operate_mcp import tracing
from operate_mcp.agent.provider import Provider
from operate_mcp.agent.toolset import Toolset
from operate_mcp.errors import AgentError
from operate_mcp.model.progress import Progress
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.model.usage import TokenUsage

T = TypeVar("T", bound=BaseModel)
AnswerCheck = Callable[[T], Awaitable[list[str]]]  # problems with the model's answer, sent back to it

_FENCE = re.compile(r"```(?:json)?\s*(\{.*\})\s*```", re.S)


class ToolFailed(AgentError):
    """A tool call failed in a way no further model turn can fix; the message is the toolset's sentence."""


class LoopOutcome(BaseModel, Generic[T]):
    result: T
    iterations: int
    usage: TokenUsage = Field(default_factory=TokenUsage)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    validation_rounds: int = 0


def parse_answer(text: str, model: type[T]) -> T:
    """The final answer as `model`; raises ValueError with what was wrong, for the repair turn."""
    candidate = text.strip()
    fenced = _FENCE.search(candidate)
    if fenced:
        candidate = fenced.group(1)
    elif not candidate.startswith("{"):
        start, end = candidate.find("{"), candidate.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("the answer contains no JSON object")
        candidate = candidate[start : end + 1]
    try:
        data = json.loads(candidate)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()[:10])
        raise ValueError(f"the JSON does not match the required schema: {problems}") from exc


async def run_loop(
    provider: Provider,
    *,
    system: str,
    user_message: str,
    toolset: Toolset,
    output_model: type[T],
    check_answer: AnswerCheck[T] | None = None,
    max_iterations: int = 30,
    on_progress: Progress | None = None,
) -> LoopOutcome[T]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": user_message}]
    tools = toolset.definitions()
    usage = TokenUsage()
    calls: list[ToolCall] = []
    repaired = False
    validation_rounds = 0
    last_problem = "the model never gave a final answer"
    for iteration in range(1, max_iterations + 1):
        if on_progress is not None:
            await on_progress(iteration, max_iterations, f"model turn {iteration} of at most {max_iterations}")
        with tracing.model_call(provider.name, getattr(provider, "model", None)) as span:
            turn = await provider.complete(system=system, messages=messages, tools=tools)
            tracing.record_turn(span, turn.usage, turn.stop_reason)
        usage = usage.add(turn.usage)
        messages.append({"role": "assistant", "content": [b.model_dump() for b in turn.content]})
        if turn.tool_uses:
            results: list[dict[str, Any]] = []
            for use in turn.tool_uses:
                text, call = await anyio.to_thread.run_sync(toolset.call, use.name, use.input)
                calls.append(call)
                if call.fatal:
                    raise ToolFailed(call.fatal)
                results.append(
                    {"type": "tool_result", "tool_use_id": use.id, "content": text, "is_error": call.is_error}
                )
            messages.append({"role": "user", "content": results})
            continue
        try:
            draft = parse_answer(turn.text, output_model)
        except ValueError as exc:
            if repaired:
                raise AgentError(
                    f"the model's answer was still not a valid proposal after one repair turn: {exc}"
                ) from exc
            repaired = True
            last_problem = str(exc)
            messages.append(
                {
                    "role": "user",
                    "content": f"Your answer could not be used: {exc}. Reply with only the JSON object "
                    "described in the system prompt, nothing else.",
                }
            )
            continue
        problems = await check_answer(draft) if check_answer is not None else []
        if not problems:
            return LoopOutcome(
                result=draft, iterations=iteration, usage=usage, tool_calls=calls, validation_rounds=validation_rounds
            )
        validation_rounds += 1
        last_problem = "; ".join(problems)
        listing = "\n".join(f"- {p}" for p in problems)
        messages.append(
            {
                "role": "user",
                "content": "The proposal failed validation by code:\n"
                f"{listing}\nFix these and answer again with the complete JSON proposal.",
            }
        )
    raise AgentError(
        f"no valid proposal within {max_iterations} model turns (OPERATE_MCP_MAX_ITERATIONS); "
        f"last problem: {last_problem}"
    )
