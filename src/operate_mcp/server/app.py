"""The application object every toolset shares: settings, stores and clients, built once per server.

The CLI builds the same object for the commands that run use cases (`replay`), so both faces run
them against the same dependencies.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable

from operate_mcp.agent.anthropic_provider import provider_from_settings
from operate_mcp.agent.provider import Provider
from operate_mcp.audit.log import AuditLog, audit_log_for
from operate_mcp.config import Settings
from operate_mcp.errors import ConfigError, OperateError
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.kube.runner import Kubectl
from operate_mcp.records.alerts import FailureAlert, FailureAlerts
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.sessions import SessionStore

ProviderFactory = Callable[[Settings], Provider]


def default_provider(settings: Settings) -> Provider:
    """Anthropic's API (or a gateway speaking it), Bedrock or Vertex AI, as OPERATE_MCP_PROVIDER says."""
    return provider_from_settings(settings)


class App:
    """What the tools share; the model provider is made only when first needed (listing tools needs no key)."""

    def __init__(
        self, settings: Settings, *, caller: str, provider_factory: ProviderFactory = default_provider
    ) -> None:
        self.settings = settings
        self.caller = caller
        self.provider_factory = provider_factory
        self.kubectl = Kubectl(settings)
        self.sessions = SessionStore(settings.data_dir, settings.session_ttl_seconds)
        self.audit: AuditLog = audit_log_for(settings)
        self.records = RecordStore(settings.data_dir, retention_days=settings.records_retention_days)
        self.alerts = FailureAlerts(settings.data_dir, settings.alert_webhook_url)
        self.metrics = RunMetrics()
        self.anomalies = AnomalyStore(settings.data_dir, alerts=self.alerts)
        self.knowledge = KnowledgeBase(settings, kubectl=self.kubectl) if settings.knowledge_enabled else None
        # (session id, MCP request id) -> (version, digest) the person was asked to approve
        self.shown: dict[tuple[str, str], tuple[int, str]] = {}
        self.deps = OperateDeps(
            settings=settings,
            kubectl=self.kubectl,
            provider=None,
            sessions=self.sessions,
            knowledge=self.knowledge,
            audit=self.audit,
            records=self.records,
            alerts=self.alerts,
            metrics=self.metrics,
            anomalies=self.anomalies,
        )

    def start_retention(self) -> None:
        """Retention of runs and anomalies at start, off the request path: archives (gzip JSONL) before it deletes."""
        threading.Thread(target=self._prune, name="records-retention", daemon=True).start()

    def start_warm_up(self) -> None:
        """Load the embedding model off the request path once serving, so the first knowledge call is fast."""
        if self.knowledge is not None:
            # not a daemon: killed inside ONNX Runtime or torch at exit, it aborts the process ("FATAL: exception
            # not rethrown"); a server told to stop while loading finishes the load (seconds) first
            threading.Thread(target=self._warm_up, name="knowledge-warm-up", daemon=False).start()

    def _warm_up(self) -> None:
        assert self.knowledge is not None
        try:  # the model first: it needs no lock on the local store, which the CLI may be using meanwhile
            self.knowledge.embedder.embed(["warm up"])
            self.knowledge.ready()
        except OperateError as exc:  # e.g. no embeddings extra: the first knowledge call says so again
            logging.getLogger(__name__).warning("knowledge warm-up: %s", exc)
        except Exception:  # a failed warm-up must not take the server down
            logging.getLogger(__name__).exception("knowledge warm-up failed")

    def _prune(self) -> None:
        """Records, then their anomalies, past the same retention; each on its own, so one failing spares the other."""
        try:
            self.records.apply_retention()
        except Exception:  # a failed prune must not take the server down; the next start retries
            logging.getLogger(__name__).exception("records retention failed")
        try:
            self.anomalies.apply_retention(self.settings.records_retention_days)
        except Exception:  # likewise
            logging.getLogger(__name__).exception("anomaly retention failed")

    def alert(self, step: str, intent: str, session_id: str | None, error: str) -> None:
        """Every failure leaves one line in alerts/intent-failures.log (and the webhook, if set)."""
        with contextlib.suppress(OSError):  # best effort; the caller still gets the error
            self.alerts.alert(FailureAlert(request_id=session_id or "-", intent=intent or "-", step=step, error=error))

    def require_knowledge(self) -> KnowledgeBase:
        if self.knowledge is None:
            raise OperateError("knowledge is disabled (OPERATE_MCP_KNOWLEDGE_ENABLED=false)")
        return self.knowledge

    def with_provider(self, *, required: bool) -> OperateDeps:
        """Analysis needs the model; execution only uses it for validation, so it may go without."""
        if self.deps.provider is None:
            try:
                self.deps.provider = self.provider_factory(self.settings)
            except ConfigError:
                if required:
                    raise
        return self.deps
