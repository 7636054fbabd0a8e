"""Execution metrics on a seeded store match numbers worked out by hand; the Prometheus registry counts runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from operate_mcp.records.metrics import compute_metrics, p95
from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.prometheus import RunMetrics
from operate_mcp.records.store import RecordStore

ROLLOUT = "kubectl rollout status deployment/checkout"

# name: (day, status, intent, duration, failed step, purpose)
SEED: dict[str, tuple[date, RunStatus, str, float, str | None, str]] = {
    "a": (date(2026, 2, 1), RunStatus.SUCCEEDED, "deploy checkout", 10, None, "operate"),
    "b": (date(2026, 2, 2), RunStatus.SUCCEEDED, "Deploy  Checkout", 20, None, "operate"),
    "c": (date(2026, 2, 3), RunStatus.FAILED, "deploy checkout", 30, ROLLOUT, "operate"),
    "d": (date(2026, 2, 4), RunStatus.PARTIAL, "scale api", 40, ROLLOUT, "operate"),
    "e": (date(2026, 2, 5), RunStatus.INTERRUPTED, "scale api", 50, "kubectl scale deployment/api", "operate"),
    "f": (date(2026, 2, 6), RunStatus.ROLLED_BACK, "roll back checkout", 60, None, "rollback"),
    "g": (date(2026, 2, 7), RunStatus.SUCCEEDED, "scale api", 5, None, "operate"),
    "h": (date(2026, 2, 8), RunStatus.RUNNING, "scale api", 0, None, "operate"),
    "i": (date(2026, 2, 9), RunStatus.FAILED, "roll back checkout", 100, "kubectl apply -f -", "rollback"),
    "j": (date(2026, 2, 10), RunStatus.SUCCEEDED, "deploy checkout", 15, None, "operate"),
    "k": (date(2026, 1, 15), RunStatus.FAILED, "deploy checkout", 999, ROLLOUT, "operate"),  # before the window
    "l": (date(2026, 3, 1), RunStatus.SUCCEEDED, "deploy checkout", 1, None, "operate"),  # after the window
}


def make(name: str) -> ExecutionRecord:
    day, status, intent, duration, step, purpose = SEED[name]
    started = datetime(day.year, day.month, day.day, 12, 0, tzinfo=UTC)
    return ExecutionRecord(
        id=f"run-{int(started.timestamp() * 1000):013d}-{ord(name):08x}",
        started_at=started,
        finished_at=None if status is RunStatus.RUNNING else started + timedelta(seconds=duration),
        triggered_by="cli",
        caller="alice",
        intent=intent,
        purpose=purpose,
        status=status,
        duration_seconds=duration,
        failed_step=step,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    s = RecordStore(tmp_path_factory.mktemp("metrics"))
    s.save_many(make(name) for name in SEED)
    return s


def test_february_metrics_match_the_hand_computed_values(store: RecordStore) -> None:
    m = compute_metrics(store, start=date(2026, 2, 1), end=date(2026, 2, 28), by_intent=True)

    # a..j are in February; k (January) and l (March) are not.
    assert m.total == 10
    assert m.by_status == {"running": 1, "succeeded": 4, "failed": 2, "partial": 1, "rolled_back": 1,
                           "interrupted": 1}
    # succeeded a b g j = 4; failed = failed c i + partial d + interrupted e = 4; rolled back f = 1
    assert (m.succeeded, m.failed, m.rolled_back) == (4, 4, 1)
    # 4 / (4 + 4); the clean rollback f and the running h count in neither
    assert m.success_rate == 0.5
    # finished runs (h is running): 10 20 30 40 50 60 5 100 15 -> sum 330 over 9
    assert m.avg_duration_seconds == pytest.approx(330 / 9)
    # nearest rank: ceil(0.95 * 9) = 9th smallest = 100
    assert m.p95_duration_seconds == 100
    # failing runs with a step, by verb and kind: c d -> rollout status (2), e -> scale (1), i -> apply (1);
    # ties by name; each with the latest full step line as an example
    assert [(s.step, s.failures, s.example) for s in m.failing_steps] == [
        ("rollout status deployment", 2, ROLLOUT), ("apply", 1, "kubectl apply -f -"),
        ("scale deployment", 1, "kubectl scale deployment/api"),
    ]
    assert m.start == datetime(2026, 2, 1, tzinfo=UTC) and m.end == datetime(2026, 3, 1, tzinfo=UTC)


def test_per_intent_metrics_match_the_hand_computed_values(store: RecordStore) -> None:
    by_intent = {i.intent: i for i in compute_metrics(store, start=date(2026, 2, 1), end=date(2026, 2, 28),
                                                     by_intent=True).by_intent}

    assert list(by_intent) == ["deploy checkout", "scale api", "roll back checkout"]  # by total, then name
    # a b c j ("Deploy  Checkout" is the same intent): 3 ok, 1 failed; 10 20 30 15 -> avg 18.75, p95 4th = 30
    deploy = by_intent["deploy checkout"]
    assert (deploy.total, deploy.succeeded, deploy.failed, deploy.rolled_back) == (4, 3, 1, 0)
    assert deploy.success_rate == 0.75 and deploy.avg_duration_seconds == 18.75 and deploy.p95_duration_seconds == 30
    # d e g h: g ok, d e failed, h running; 40 50 5 -> avg 95/3, p95 ceil(2.85) = 3rd = 50
    scale = by_intent["scale api"]
    assert (scale.total, scale.succeeded, scale.failed, scale.rolled_back) == (4, 1, 2, 0)
    assert scale.success_rate == pytest.approx(1 / 3) and scale.avg_duration_seconds == pytest.approx(95 / 3)
    assert scale.p95_duration_seconds == 50
    # f clean rollback, i failed rollback: 0 / (0 + 1); 60 100 -> avg 80, p95 = 100
    rollback = by_intent["roll back checkout"]
    assert (rollback.total, rollback.succeeded, rollback.failed, rollback.rolled_back) == (2, 0, 1, 1)
    assert rollback.success_rate == 0.0 and rollback.avg_duration_seconds == 80 and rollback.p95_duration_seconds == 100


def test_all_time_metrics_include_every_record(store: RecordStore) -> None:
    m = compute_metrics(store)

    # February + k (failed, 999 s) + l (succeeded, 1 s)
    assert (m.total, m.succeeded, m.failed, m.rolled_back) == (12, 5, 5, 1)
    assert m.avg_duration_seconds == pytest.approx(1330 / 11)  # 330 + 999 + 1 over 11 finished runs
    assert m.p95_duration_seconds == 999  # ceil(0.95 * 11) = 11th smallest
    assert m.by_intent == []  # only with by_intent=True


def test_an_end_date_includes_that_day_and_a_datetime_end_excludes_itself(store: RecordStore) -> None:
    assert compute_metrics(store, start=date(2026, 2, 1), end=date(2026, 2, 5)).total == 5  # a..e
    assert compute_metrics(store, start=date(2026, 2, 1), end=datetime(2026, 2, 5, 12, tzinfo=UTC)).total == 4


def test_an_empty_window_has_no_rates_instead_of_dividing_by_zero(store: RecordStore) -> None:
    m = compute_metrics(store, start=date(2030, 1, 1))

    assert m.total == 0 and m.success_rate is None and m.avg_duration_seconds is None and m.p95_duration_seconds is None


def test_p95_is_nearest_rank() -> None:
    assert p95([]) is None
    assert p95([7.0]) == 7.0
    assert p95([float(x) for x in range(1, 101)]) == 95.0  # ceil(95.0) = 95th smallest
    assert p95([float(x) for x in range(1, 21)]) == 19.0  # ceil(19.0) = 19th smallest


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_prometheus_registry_counts_runs_by_status_and_observes_durations(tmp_path: Path) -> None:
    metrics = RunMetrics()
    for name in ("a", "c", "c", "f", "h", "i"):  # h is still running: ignored
        metrics.observe(make(name))

    got = samples(metrics.render().decode())

    assert got[("operate_mcp_executions_total", (("purpose", "operate"), ("status", "failed")))] == 2
    assert got[("operate_mcp_executions_total", (("purpose", "operate"), ("status", "succeeded")))] == 1
    assert got[("operate_mcp_executions_total", (("purpose", "rollback"), ("status", "rolled_back")))] == 1
    assert got[("operate_mcp_executions_total", (("purpose", "rollback"), ("status", "failed")))] == 1
    assert got[("operate_mcp_executions_total", (("purpose", "operate"), ("status", "interrupted")))] == 0
    # failed: c (30 s) twice and i (100 s)
    assert got[("operate_mcp_execution_duration_seconds_count", (("status", "failed"),))] == 3
    assert got[("operate_mcp_execution_duration_seconds_sum", (("status", "failed"),))] == 160
    assert got[("operate_mcp_execution_duration_seconds_bucket", (("le", "30.0"), ("status", "failed")))] == 2
    assert not any(labels and dict(labels).get("status") == "running" for _, labels in got)


def test_each_registry_is_separate() -> None:
    first, second = RunMetrics(), RunMetrics()
    first.observe(make("a"))

    assert b'status="succeeded"} 1.0' in first.render()
    assert b'status="succeeded"} 1.0' not in second.render()
