"""OpenTelemetry spans: one per MCP tool call, a child per model call and per cluster read or kubectl command.

Off by default, and then free: no span object is made and the SDK is never imported. On when the standard OTLP
variables name a collector (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) and the `otel`
extra is installed; or when the process that hosts the server installed a tracer provider of its own (the spans
then go wherever that provider sends them, as any instrumented library's do).

The MCP SDK opens the server span of a request (`tools/call <tool>`, `mcp.*` attributes, its parent taken from
the traceparent in the request's `_meta`); `tool_call` reuses it, and opens one only where the SDK did not.
Model spans follow the GenAI conventions (`gen_ai.*`): model, input, output and cache tokens. Nothing secret goes
into a span: no prompt, no intent, kubectl arguments through the redactor.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from operate_mcp.model.usage import TokenUsage
from operate_mcp.redact import redact

AttributeValue = str | bool | int | float | Sequence[str]
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SCOPE = "operate-mcp"
# gen_ai.provider.name of each provider (the GenAI conventions' well-known values).
GEN_AI_PROVIDERS = {"anthropic": "anthropic", "bedrock": "aws.bedrock", "vertex": "gcp.vertex_ai"}

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured = False


class Span(Protocol):
    """The part of an OpenTelemetry span the project uses; `NoSpan` when tracing is off."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def record_exception(self, exception: BaseException) -> None: ...

    def is_recording(self) -> bool: ...


class NoSpan:
    """A span when tracing is off: takes everything, keeps nothing."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        pass

    def record_exception(self, exception: BaseException) -> None:
        pass

    def is_recording(self) -> bool:
        return False


NO_SPAN = NoSpan()


def wanted(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the standard variables ask for traces: a collector endpoint, the SDK not disabled, the exporter
    not `none`."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return False
    return any(env.get(name, "").strip() for name in OTLP_ENDPOINTS)


def configure(environ: Mapping[str, str] | None = None) -> bool:
    """Install the OTLP exporter once per process when the variables ask for it; True if this call did.

    Called when the tools are registered, before the first request, so the SDK's server span of the very first
    call is recorded too. Without the variables it reads a few of them and imports nothing."""
    global _configured
    with _lock:
        if _configured:
            return False
        _configured = True
    env = os.environ if environ is None else environ
    if not wanted(env):
        return False
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "").strip()
    try:
        # lazy: the otel extra is optional, and a server without OTLP variables never imports it
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        if protocol == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:  # the specification's default, http/protobuf
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment]
                OTLPSpanExporter,
            )
    except ImportError as exc:
        log.warning(
            "an OTLP endpoint is set (%s) but the tracing libraries are missing (%s): pip install "
            "'operate-mcp[otel]'. No spans are exported",
            next(name for name in OTLP_ENDPOINTS if env.get(name, "").strip()),
            exc.name,
        )
        return False
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or "operate-mcp"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _tracer() -> Any | None:
    """The project's tracer when a real tracer provider is installed, else None (tracing is off)."""
    if not _configured:
        configure()
    try:
        # lazy: only reached when a span is asked for; the API comes with the MCP SDK, the SDK with the extra
        from opentelemetry import trace
    except ImportError:
        return None
    provider = trace.get_tracer_provider()
    if isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        return None
    return provider.get_tracer(SCOPE)


@contextlib.contextmanager
def span(
    name: str, *, kind: str = "internal", attributes: Mapping[str, AttributeValue] | None = None
) -> Iterator[Span]:
    """A child of the current span (`kind`: internal, client, server); an exception leaving it is recorded."""
    tracer = _tracer()
    if tracer is None:
        yield NO_SPAN
        return
    from opentelemetry.trace import SpanKind  # lazy: as in _tracer

    with tracer.start_as_current_span(name, kind=SpanKind[kind.upper()], attributes=dict(attributes or {})) as s:
        yield s


@contextlib.contextmanager
def tool_call(tool: str) -> Iterator[Span]:
    """The server span of one MCP tool call: the SDK's `tools/call <tool>` when it opened one, else ours."""
    tracer = _tracer()
    if tracer is None:
        yield NO_SPAN
        return
    from opentelemetry import trace  # lazy: as in _tracer

    name = f"tools/call {tool}"
    current = trace.get_current_span()
    if current.is_recording() and getattr(current, "name", None) == name:
        yield current
        return
    attributes = {"mcp.method.name": "tools/call", "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
    with tracer.start_as_current_span(name, kind=trace.SpanKind.SERVER, attributes=attributes) as s:
        yield s


def model_call(provider: str, model: str | None) -> contextlib.AbstractContextManager[Span]:
    """The span of one model turn, named and attributed by the GenAI conventions."""
    attributes: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": GEN_AI_PROVIDERS.get(provider, provider),
    }
    if model:
        attributes["gen_ai.request.model"] = model
    return span(f"chat {model or provider}", kind="client", attributes=attributes)


def record_turn(s: Span, usage: TokenUsage, stop_reason: str | None) -> None:
    """What a model turn used: input, output and cache tokens, and why it stopped."""
    if not s.is_recording():
        return
    s.set_attribute("gen_ai.usage.input_tokens", usage.input_tokens)
    s.set_attribute("gen_ai.usage.output_tokens", usage.output_tokens)
    s.set_attribute("gen_ai.usage.cache_read.input_tokens", usage.cache_read_input_tokens)
    s.set_attribute("gen_ai.usage.cache_creation.input_tokens", usage.cache_creation_input_tokens)
    if stop_reason:
        s.set_attribute("gen_ai.response.finish_reasons", [stop_reason])


def command(argv: Sequence[str]) -> contextlib.AbstractContextManager[Span]:
    """The span of one kubectl process: `kubectl <verb>`, its arguments redacted."""
    verb = next((a for a in argv[1:] if not a.startswith("-")), "")
    attributes: dict[str, AttributeValue] = {
        "process.executable.name": "kubectl",
        "process.command_args": [str(a) for a in redact(list(argv))],
        "operate_mcp.kubectl.dry_run": any(a.startswith("--dry-run") for a in argv),
    }
    return span(f"kubectl {verb}".rstrip(), kind="client", attributes=attributes)


def record_exit(s: Span, exit_code: int, timed_out: bool) -> None:
    if s.is_recording():
        s.set_attribute("process.exit.code", exit_code)
        s.set_attribute("operate_mcp.kubectl.timed_out", timed_out)


def cluster_read(path: str) -> contextlib.AbstractContextManager[Span]:
    """The span of one read of the Kubernetes API (a list page, a log tail, discovery)."""
    attributes: dict[str, AttributeValue] = {"http.request.method": "GET", "url.path": path}
    return span("GET kubernetes", kind="client", attributes=attributes)
