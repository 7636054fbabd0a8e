"""The MCP edge maps every domain error in one place: each tool answers an OperateError with its own
sentence (never the SDK's bare "Error executing tool"), and a failed `operate` call leaves an alert."""

from __future__ import annotations

import pytest
from mcp import Client

from operate_mcp.config import Settings
from operate_mcp.errors import OperateError
from operate_mcp.records.alerts import ALERTS_FILE
from operate_mcp.server import create_server
from operate_mcp.server.errors import tool_errors

# One call per tool that the domain refuses, and the sentence it refuses with.
REFUSED = [
    ("operate", {}, "give an intent"),
    ("remediate", {}, "give a symptom"),
    ("replay", {"id": "nonsense"}, "is not a session id"),
    ("manage_knowledge", {"action": "list"}, "knowledge is disabled"),
    ("scan", {}, "knowledge is disabled"),
    ("runs_search", {"query": "status:("}, "is never closed"),
    ("runs_show", {"id": "run-0000000000000-deadbeef"}, "no run 'run-0000000000000-deadbeef'"),
    ("runs_summary", {"id": "run-0000000000000-deadbeef"}, "no run 'run-0000000000000-deadbeef'"),
    ("metrics", {"start": "yesterday"}, "is not an ISO date"),
    ("audit_verify", {"days": 0}, "days must be 1 or more"),
    ("check_anomalies", {"since": "yesterday"}, "is neither a date"),
    ("kube_get", {"resource": "pods", "name": "../etc"}, "is not a valid Kubernetes name"),
    ("kube_describe", {"resource": "deploy", "namespace": "Not_A_Namespace"}, "is not a valid Kubernetes namespace"),
    ("kube_logs", {"pod": "web", "tail_lines": 0}, "tail_lines: Input should be greater than or equal to 1"),
    ("kube_events", {"for_object": "deployment/../x"}, "is not a valid Kubernetes name"),
    ("kube_top", {"selector": "app=web;rm"}, "is not a valid Kubernetes label selector"),
    ("kube_api_resources", {"api_group": "Apps!"}, "is not a valid Kubernetes API group"),
    ("kube_explain", {"field": "deployment spec"}, "is not a valid Kubernetes field path"),
]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        approvers_dir=tmp_path / "config" / "approvers",
        approval_key_file=tmp_path / "config" / "approval.key",
        knowledge_enabled=False,
    )


async def test_every_tool_is_covered_by_this_test(settings):
    async with Client(create_server(settings)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {name for name, _, _ in REFUSED}


@pytest.mark.parametrize(("name", "arguments", "sentence"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_every_tool_answers_a_domain_error_with_its_own_sentence(settings, name, arguments, sentence):
    async with Client(create_server(settings)) as client:
        result = await client.call_tool(name, arguments)
    assert result.is_error
    assert sentence in result.content[0].text


async def test_a_failed_operate_call_leaves_an_alert_naming_the_step(settings):
    async with Client(create_server(settings)) as client:
        await client.call_tool("operate", {"sessionId": "opr-1767225600000-1a2b3c4d", "executeChoice": 2})
    [line] = (settings.data_dir / ALERTS_FILE).read_text().splitlines()
    assert "execute" in line and "opr-1767225600000-1a2b3c4d" in line and "executeChoice=1 is the only" in line


async def test_other_tools_raise_no_alert(settings):
    async with Client(create_server(settings)) as client:
        await client.call_tool("metrics", {"start": "yesterday"})
    assert not (settings.data_dir / ALERTS_FILE).exists()


async def test_a_crash_stays_a_crash_and_skips_the_error_hook():
    """Only domain errors become tool errors: an unexpected exception keeps its type (the SDK hides its text)."""
    seen: list[object] = []

    @tool_errors(on_error=lambda exc, args: seen.append(args))
    async def broken(x: int) -> int:
        raise RuntimeError("internal detail")

    with pytest.raises(RuntimeError):
        await broken(x=1)
    assert seen == []


async def test_the_error_hook_sees_the_arguments_of_the_failed_call():
    seen: list[tuple[str, object]] = []

    @tool_errors(on_error=lambda exc, args: seen.append((str(exc), dict(args))))
    async def refused(intent: str) -> None:
        raise OperateError("no")

    with pytest.raises(Exception, match="no"):
        await refused(intent="scale api")
    assert seen == [("no", {"intent": "scale api"})]
