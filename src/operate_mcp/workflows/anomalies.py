"""Anomalies on demand: list them (`check_anomalies`, `operate-mcp anomalies`), judge a stored run again,
and `watch` — keep observing what recent executions touched and record late regressions as anomalies of
the run that caused them (the post-deploy stability window)."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field

from operate_mcp.errors import OperateError
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.targets import Target
from operate_mcp.model.observation import Anomaly, AnomalySeverity, Category
from operate_mcp.observe.anomalies import detect, load_rules
from operate_mcp.observe.baselines import Baselines
from operate_mcp.observe.context import WORKLOADS, capture
from operate_mcp.records.models import ExecutionRecord
from operate_mcp.workflows.observe import analyze_logs, client_version
from operate_mcp.workflows.operate import OperateDeps

logger = logging.getLogger(__name__)
_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
KINDS = {kind: plural for plural, kind in WORKLOADS.items()}


class AnomalyPage(BaseModel):
    """What `check_anomalies` returns: the anomalies that match, newest first, and the filter used."""

    anomalies: list[Anomaly]
    total: int
    since: datetime | None = None
    filters: dict[str, str] = Field(default_factory=dict)


def parse_since(text: str | None, now: datetime | None = None) -> datetime | None:
    """`2026-11-30`, `2026-11-30T12:00:00Z`, or a look-back like `90m`, `24h`, `7d`."""
    if not text:
        return None
    now = now or datetime.now(UTC)
    m = _DURATION.match(text.strip())
    if m:
        return now - timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise OperateError(
            f"since={text!r} is neither a date (2026-11-30), a time (2026-11-30T12:00:00Z) nor a look-back (24h, 7d)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise OperateError(f"{text!r} is not a duration; write it as 30s, 15m, 1h or 2d")
    return float(int(m.group(1)) * _UNITS[m.group(2)])


def list_anomalies(
    deps: OperateDeps,
    *,
    since: str | None = None,
    category: Category | None = None,
    severity: AnomalySeverity | None = None,
    namespace: str | None = None,
    run_id: str | None = None,
    limit: int = 50,
) -> AnomalyPage:
    if deps.anomalies is None:
        raise OperateError("anomaly detection is not set up in this process")
    start = parse_since(since)
    found = deps.anomalies.query(
        since=start, category=category, min_severity=severity, namespace=namespace, run_id=run_id, limit=limit
    )
    filters = {
        k: v
        for k, v in {"category": category, "severity": severity, "namespace": namespace, "run_id": run_id}.items()
        if v
    }
    return AnomalyPage(anomalies=found, total=len(found), since=start, filters=filters)


def recheck_run(deps: OperateDeps, run_id: str) -> list[Anomaly]:
    """Judge a stored run again with today's rules (its baselines are not taught twice)."""
    if deps.records is None or deps.anomalies is None:
        raise OperateError("anomaly detection is not set up in this process")
    record = deps.records.get(run_id)
    found = detect(
        record,
        store=deps.records,
        baselines=Baselines(deps.anomalies),
        rules=load_rules(deps.settings.data_dir),
        learn=False,
    )
    deps.anomalies.save_many(found, intent=record.intent)
    return found


def _targets(record: ExecutionRecord) -> list[Target]:
    if record.after is None:
        return []
    return [
        Target(
            get_as=f"{KINDS[w.kind]}/{w.name}", resource=KINDS[w.kind], name=w.name, namespace=w.namespace, kind=w.kind
        )
        for w in record.after.workloads
        if w.kind in KINDS and w.exists
    ]


def watch_once(deps: OperateDeps, *, window: timedelta, now: datetime | None = None) -> list[Anomaly]:
    """One look at every workload touched by runs that finished within `window`: the run's rules judged
    against the cluster as it is now. A regression found here is a late anomaly of that run."""
    if deps.records is None or deps.anomalies is None:
        raise OperateError("anomaly detection is not set up in this process")
    now = now or datetime.now(UTC)
    rules = load_rules(deps.settings.data_dir)
    reader = reader_for(deps.kubectl)
    found: list[Anomaly] = []
    since = (now - window - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # started before, finished within
    for row in deps.records.search(f"after:{since}", per_page=200).items:
        record = deps.records.get(row.id)
        if record.finished_at is None or record.finished_at < now - window or record.purpose == "rollback":
            continue
        targets = _targets(record)
        if not targets:
            continue
        current = capture(
            reader,
            targets,
            default_namespace=default_namespace(deps.kubectl),
            client_version=client_version(deps.kubectl),
        )
        later = record.model_copy(
            update={
                "after": current,
                "log_analysis": analyze_logs(deps, record.after, current),
                "outcome_checks": [],
            }
        )
        late = detect(
            later, store=deps.records, baselines=Baselines(deps.anomalies), rules=rules, now=now, learn=False, late=True
        )
        late = [a for a in late if a.rule not in ("duration_regression", "flaky")]  # judged at execution
        deps.anomalies.save_many(late, intent=record.intent)
        found += late
    return found


def watch(
    deps: OperateDeps,
    *,
    duration: float,
    interval: float,
    window: timedelta,
    on_found: Callable[[list[Anomaly]], None] = lambda found: None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Observe for `duration` seconds, every `interval`; the number of late anomalies recorded."""
    deadline = time.monotonic() + duration
    total = 0
    while True:
        found = watch_once(deps, window=window)
        total += len(found)
        if found:
            on_found(found)
        if time.monotonic() + interval > deadline:
            return total
        sleep(interval)
