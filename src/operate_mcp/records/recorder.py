"""The one call an execution makes when it ends: build its record, store it, alert on failure, count it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.records.models import ExecutionRecord, record_from_session
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore

if TYPE_CHECKING:
    from operate_mcp.model.session import Session

logger = logging.getLogger(__name__)


def record_execution(
    session: Session,
    *,
    store: RecordStore,
    alerts: FailureAlerts | None = None,
    metrics: RunMetrics | None = None,
    **details: Any,
) -> ExecutionRecord:
    """Save the record of a finished session (a store error propagates: the data point is the point).

    Alerts and metrics are best effort: a full disk under `alerts/` or a metrics bug is logged and
    never turns a finished execution into an error. `details` go to `record_from_session`.
    """
    record = record_from_session(session, **details)
    store.save(record)
    if alerts is not None:
        try:
            alerts.alert_if_failed(record)
        except OSError as exc:
            logger.error("could not write the failure alert for %s: %s", record.id, exc)
    if metrics is not None:
        try:
            metrics.observe(record)
        except Exception:  # metrics must never break an execution
            logger.exception("could not count %s in the Prometheus metrics", record.id)
    return record
