"""Learned duration baselines: a slow run is flagged only once the operation has a history, per run and per step."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.model.observation import Anomaly
from operate_mcp.observe.anomalies import RuleSet, detect, load_rules
from operate_mcp.observe.baselines import MIN_SAMPLES, WINDOW, Baselines, robust_z
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.records.models import ExecutionRecord, RunStatus, new_record_id
from operate_mcp.records.store import RecordStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCALE = ["kubectl", "scale", "deployment/web", "--replicas=3", "-n", "shop"]
WAIT = ["kubectl", "rollout", "status", "deployment/web", "-n", "shop"]


def run(n: int, *, scale: float = 2.0, wait: float = 8.0, status: RunStatus = RunStatus.SUCCEEDED,
        category: str = "scale") -> ExecutionRecord:
    """A `scale` run of deployment/web: two steps, its duration their sum."""
    at = T0 + timedelta(hours=n)
    return ExecutionRecord.model_validate({
        "id": new_record_id(at), "started_at": at, "finished_at": at + timedelta(seconds=scale + wait),
        "triggered_by": "cli", "caller": "alice", "intent": "scale web to 3", "status": status,
        "category": category, "duration_seconds": scale + wait, "namespaces": ["shop"],
        "resources": [f"deployment/web-{n}"],  # a different object each time: no flaky pairs here
        "commands": [
            {"index": 1, "argv": SCALE, "exit_code": 0, "duration_seconds": scale},
            {"index": 2, "argv": WAIT, "exit_code": 0, "duration_seconds": wait},
        ],
    })


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[RecordStore, AnomalyStore]]:
    records, anomalies = RecordStore(tmp_path), AnomalyStore(tmp_path)
    yield records, anomalies
    anomalies.close()
    records.close()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_rules()


def history(records: RecordStore, baselines: Baselines, rules: RuleSet, count: int) -> None:
    """`count` ordinary runs, each detected (and so learned) the way every execution is."""
    for n in range(count):
        record = run(n, scale=2.0 + 0.1 * (n % 3), wait=8.0 + 0.2 * (n % 4))
        records.save(record)
        assert detect(record, store=records, baselines=baselines, rules=rules, now=record.started_at) == []


def slowness(found: list[Anomaly]) -> list[Anomaly]:
    return [a for a in found if a.rule == "duration_regression"]


def test_twenty_normal_runs_then_one_three_times_slower_is_flagged(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    records, anomalies = stores
    baselines = Baselines(anomalies)
    history(records, baselines, rules, 20)

    slow = run(100, scale=6.0, wait=24.0)
    found = slowness(detect(slow, store=records, baselines=baselines, rules=rules, now=slow.started_at))

    assert len(found) == 1
    anomaly = found[0]
    assert anomaly.severity == "P3" and anomaly.run_id == slow.id and anomaly.category == "scale"
    assert anomaly.expected.startswith("about 10.") and "EWMA of 20 runs" in anomaly.expected
    ratio = float(anomaly.actual.removeprefix("30.0s (").split("x")[0])
    assert 2.5 < ratio <= 3.0 and "robust z" in anomaly.actual
    assert any(e.startswith("step rollout status deployment: 24.0s") for e in anomaly.evidence)


def test_the_same_slow_run_after_only_three_prior_runs_is_not_flagged(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    records, anomalies = stores
    baselines = Baselines(anomalies)
    history(records, baselines, rules, 3)

    slow = run(100, scale=6.0, wait=24.0)
    assert slowness(detect(slow, store=records, baselines=baselines, rules=rules, now=slow.started_at)) == []
    assert baselines.judge_record(slow).total.known is False


def test_a_slow_step_is_flagged_even_when_the_whole_run_is_not_twice_as_slow(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    records, anomalies = stores
    baselines = Baselines(anomalies)
    history(records, baselines, rules, 20)

    slow_scale = run(100, scale=7.0, wait=8.0)  # 15 s in all (1.5x), but the scale step took 3.3x its usual
    found = slowness(detect(slow_scale, store=records, baselines=baselines, rules=rules, now=slow_scale.started_at))

    assert len(found) == 1
    assert [e for e in found[0].evidence if e.startswith("step scale deployment: 7.0s")]


def test_baselines_survive_a_restart_and_a_run_is_never_judged_against_itself(
    tmp_path: Path, rules: RuleSet
) -> None:
    with RecordStore(tmp_path) as records, AnomalyStore(tmp_path) as anomalies:
        history(records, Baselines(anomalies), rules, MIN_SAMPLES)

    with RecordStore(tmp_path) as records, AnomalyStore(tmp_path) as anomalies:
        baselines = Baselines(anomalies)
        slow = run(100, scale=6.0, wait=24.0)
        before = baselines.judge_record(slow)
        assert before.total.known and before.total.samples == MIN_SAMPLES
        assert slowness(detect(slow, store=records, baselines=baselines, rules=rules, now=slow.started_at))

        # detection again on demand: the run is already in the baseline, so it is neither learned twice
        # nor allowed to make itself look normal
        assert baselines.learn_record(slow) is False
        row = anomalies.baseline("scale")
        assert row is not None and row.count == MIN_SAMPLES + 1 and row.recent_runs.count(slow.id) == 1


def test_failed_runs_do_not_teach_the_baseline(stores: tuple[RecordStore, AnomalyStore]) -> None:
    _, anomalies = stores
    baselines = Baselines(anomalies)

    assert baselines.learn_record(run(1, wait=300.0, status=RunStatus.FAILED)) is False
    assert anomalies.baseline("scale") is None
    assert baselines.learn_record(run(2)) is True
    assert anomalies.baseline("scale", "rollout status deployment") is not None


def test_memory_is_bounded_by_the_window(stores: tuple[RecordStore, AnomalyStore]) -> None:
    _, anomalies = stores
    baselines = Baselines(anomalies)
    for n in range(WINDOW + 30):
        baselines.learn_record(run(n))

    row = anomalies.baseline("scale")
    assert row is not None
    assert row.count == WINDOW + 30 and len(row.recent) == WINDOW and len(row.recent_runs) == WINDOW


def test_categories_learn_separately(stores: tuple[RecordStore, AnomalyStore]) -> None:
    _, anomalies = stores
    baselines = Baselines(anomalies)
    for n in range(MIN_SAMPLES):
        baselines.learn_record(run(n))

    assert baselines.judge("scale", "", 10.0).known
    assert not baselines.judge("update", "", 10.0).known


def test_the_robust_z_score_is_not_fooled_by_one_outlier_or_by_identical_samples() -> None:
    samples = [10.0] * 19 + [500.0]  # one earlier incident in the window
    median, mad, z = robust_z(30.0, samples)
    assert median == 10.0 and mad == 0.0 and z > 3.5  # the MAD is floored, so identical samples still judge

    _, _, z_normal = robust_z(10.2, [9.8, 10.0, 10.1, 10.3, 9.9, 10.0, 10.2, 9.7, 10.1, 10.0])
    assert abs(z_normal) < 3.5
