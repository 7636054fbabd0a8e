"""Prometheus metrics for the HTTP transport's `/metrics`: executions by status and purpose, and their durations;
the model tokens analyses used, by type (input, output, cache_read, cache_creation), so a prompt cache that stops
hitting shows as cache_read falling and cache_creation rising.

Labels stay low-cardinality (status, purpose); intents are free text and belong in `operate-mcp metrics`.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from operate_mcp.model.usage import TokenUsage
from operate_mcp.records.models import ExecutionRecord, RunStatus

TOKEN_TYPES = ("input", "output", "cache_read", "cache_creation")
DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class RunMetrics:
    """One registry per server, not the global default, so tests and several servers never share counters."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.executions = Counter(
            "operate_mcp_executions",
            "Finished executions, by final status and purpose (operate, rollback, replay, remediate).",
            ["status", "purpose"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "operate_mcp_execution_duration_seconds",
            "Wall-clock duration of finished executions, by final status.",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.analyses = Counter(
            "operate_mcp_analyses",
            "Analyses that produced a proposal, by purpose (operate, remediate).",
            ["purpose"],
            registry=self.registry,
        )
        self.model_tokens = Counter(
            "operate_mcp_model_tokens",
            "Model tokens used by analyses, by type (input, output, cache_read, cache_creation) and purpose.",
            ["type", "purpose"],
            registry=self.registry,
        )
        self.analyses.labels(purpose="operate")
        for kind in TOKEN_TYPES:
            self.model_tokens.labels(type=kind, purpose="operate")
        for status in RunStatus:  # every series exists from the start, so rate() sees the first failure
            if status is not RunStatus.RUNNING:
                self.executions.labels(status=status.value, purpose="operate")
                self.duration.labels(status=status.value)

    def observe(self, record: ExecutionRecord) -> None:
        """Count one finished execution; running records are ignored until they finish."""
        if record.status is RunStatus.RUNNING:
            return
        self.executions.labels(status=record.status.value, purpose=record.purpose).inc()
        self.duration.labels(status=record.status.value).observe(record.duration_seconds)

    def observe_usage(self, usage: TokenUsage, purpose: str = "operate") -> None:
        """Count one analysis and the tokens its model turns used (the proposal's `token_usage`)."""
        self.analyses.labels(purpose=purpose).inc()
        counts = {
            "input": usage.input_tokens,
            "output": usage.output_tokens,
            "cache_read": usage.cache_read_input_tokens,
            "cache_creation": usage.cache_creation_input_tokens,
        }
        for kind, count in counts.items():
            self.model_tokens.labels(type=kind, purpose=purpose).inc(count)

    def render(self) -> bytes:
        """The text exposition format; serve it with `CONTENT_TYPE`."""
        return generate_latest(self.registry)
