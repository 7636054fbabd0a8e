"""Tracing (docs/tracing.md): one `operate` analysis over a real in-memory MCP client is one trace — the server
span of the tool call, a `gen_ai.*` span per model turn and a span per kubectl command under it — whose parent
is the traceparent the client sent in `_meta`. Off by default: no spans, no SDK import.

The SDK's InMemorySpanExporter collects the spans; the scripted provider stands in for the model; kubectl is
real and its cluster unreachable (the dry-run fails and goes back to the model, as it would)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer
from opentelemetry import context, trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from operate_mcp import tracing
from operate_mcp.agent.scripted import ScriptedProvider, answer
from operate_mcp.config import Settings
from operate_mcp.model.tool_call import ToolCall
from operate_mcp.server.app import App
from operate_mcp.server.tools import operate

SCALE = {
    "analysis": "api runs 2 replicas; scale it to 5",
    "commands": [
        {"argv": ["kubectl", "scale", "deployment/api", "--replicas=5", "-n", "shop"], "description": "scale api"}
    ],
}
NOTHING = {"analysis": "the cluster cannot be reached; nothing to propose", "commands": []}
REMOTE_TRACE = "0af7651916cd43dd8448eb211c80319c"
REMOTE_SPAN = "b7ad6b7169203331"
AMBIENT_SPAN = "00f067aa0ba902b7"  # the context the server's tasks start in: it must not be the parent


class NoTools:
    """The model gets no tools here (the kubectl toolset would preflight a cluster this test has not got)."""

    def definitions(self) -> list[dict[str, Any]]:
        return []

    def call(self, name: str, arguments: dict[str, Any], /) -> tuple[str, ToolCall]:
        return "no tools", ToolCall(name=name, input=arguments, ok=False, is_error=True)


@pytest.fixture(scope="module")
def exporter():
    """An SDK tracer provider for the process (the API allows one), its spans kept in memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # later tests' spans are dropped


@pytest.fixture
def spans(exporter):
    exporter.clear()
    return exporter


@pytest.fixture
def server(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'https://127.0.0.1:1'}\n"
        "contexts:\n- name: c\n  context: {cluster: c, user: u, namespace: shop}\ncurrent-context: c\n"
        "users:\n- name: u\n  user: {token: t0ken}\n"
    )
    settings = Settings(
        data_dir=tmp_path, kubeconfig=kubeconfig, knowledge_enabled=False, command_timeout_seconds=10
    )
    model = ScriptedProvider([answer(SCALE), answer(NOTHING)])
    app = App(settings, caller="alice", provider_factory=lambda _: model)
    app.deps.toolset = NoTools()
    mcp = MCPServer(name="operate-mcp")
    operate.register(mcp, app)
    return mcp


def children(of: ReadableSpan, every: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return sorted(
        (s for s in every if s.parent is not None and s.parent.span_id == of.context.span_id),
        key=lambda s: s.start_time or 0,
    )


def remote_parent(span_id: str) -> context.Context:
    return TraceContextTextMapPropagator().extract({"traceparent": f"00-{REMOTE_TRACE}-{span_id}-01"})


async def test_one_operate_analysis_is_one_trace_under_the_callers_traceparent(server, spans):
    ambient = context.attach(remote_parent(AMBIENT_SPAN))  # the server's tasks start in this context ...
    try:
        async with Client(server) as client:
            token = context.attach(remote_parent(REMOTE_SPAN))  # ... the call's trace travels in `_meta`
            try:
                result = await client.call_tool("operate", {"intent": "scale api in shop to 5"})
            finally:
                context.detach(token)
    finally:
        context.detach(ambient)
    assert not result.is_error, result
    every = spans.get_finished_spans()

    [call] = [s for s in every if s.name == "tools/call operate" and s.kind is SpanKind.SERVER]
    assert call.attributes["mcp.method.name"] == "tools/call"
    assert call.attributes["gen_ai.tool.name"] == "operate"
    assert call.context.trace_id == int(REMOTE_TRACE, 16), "the caller's trace goes on on the server"
    assert call.parent is not None and call.parent.is_remote
    assert call.parent.span_id == int(REMOTE_SPAN, 16), "the parent is the traceparent in the request's _meta"

    below = children(call, every)
    model_turns = [s for s in below if s.name == "chat scripted"]
    assert len(model_turns) == 2, [s.name for s in below]
    for turn in model_turns:
        assert turn.kind is SpanKind.CLIENT
        assert turn.attributes["gen_ai.operation.name"] == "chat"
        assert turn.attributes["gen_ai.usage.output_tokens"] == 10
        assert turn.attributes["gen_ai.usage.cache_read.input_tokens"] == 0
        assert turn.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)
    [dry_run] = [s for s in below if s.name == "kubectl scale"]
    assert model_turns[0].end_time <= dry_run.start_time <= dry_run.end_time <= model_turns[1].start_time
    assert dry_run.attributes["operate_mcp.kubectl.dry_run"] is True
    assert "--dry-run=server" in dry_run.attributes["process.command_args"]
    assert dry_run.attributes["process.exit.code"] != 0  # the cluster is unreachable: the model is told


async def test_a_failed_tool_call_marks_its_server_span_with_the_error(server, spans):
    async with Client(server) as client:
        result = await client.call_tool("operate", {"sessionId": "opr-nosuch", "refinedIntent": "6 replicas"})
    assert result.is_error
    [call] = [s for s in spans.get_finished_spans() if s.name == "tools/call operate"]
    assert call.status.status_code is StatusCode.ERROR
    [event] = [e for e in call.events if e.name == "exception"]
    assert "opr-nosuch" in event.attributes["exception.message"]


def run_python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}, timeout=120, check=True
    )
    return proc.stdout.strip()


REGISTER_THEN_SPAN = """
import os, sys
from operate_mcp import tracing
from operate_mcp.server.errors import tool_errors
tool_errors()  # what registering a tool does
with tracing.span("x") as s:
    print(type(s).__name__, s.is_recording(), "opentelemetry.sdk" in sys.modules)
sys.stdout.flush()
os._exit(0)  # no exporter flush at exit: nobody listens on the endpoint
"""


def test_tracing_is_off_by_default_and_imports_no_sdk():
    assert run_python(REGISTER_THEN_SPAN) == "NoSpan False False"


def test_the_standard_otlp_variables_turn_it_on_at_registration():
    out = run_python(REGISTER_THEN_SPAN, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:1", OTEL_SERVICE_NAME="ops")
    assert out.endswith("True True")


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_which_standard_variables_ask_for_traces(env, on):
    assert tracing.wanted(env) is on
