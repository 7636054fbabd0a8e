"""Anomaly rules in YAML, conditions in CEL over the record: what each default rule flags, and what it leaves alone.

Records are built by hand the way recording builds them after an execution (before/after snapshots, log
analyses, commands); past runs sit in a real RecordStore; baselines in a real AnomalyStore.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.model.observation import (
    Anomaly,
    ContainerLog,
    LogAnalysis,
    PodState,
    Snapshot,
    TemplateCount,
    Usage,
)
from operate_mcp.observe.anomalies import (
    RULES_DIR,
    RuleSet,
    comprehension_depth,
    detect,
    load_rules,
    validate_rule_file,
)
from operate_mcp.observe.baselines import Baselines
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.records.models import ExecutionRecord, RunStatus, new_record_id
from operate_mcp.records.store import RecordStore

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
MiB = 1024 * 1024


def pod(name: str = "web-7d9f-abcde", **fields: Any) -> PodState:
    return PodState.model_validate(
        {"name": name, "namespace": "shop", "owner": "deployment/web", "phase": "Running", "ready": True, **fields}
    )


def usage(name: str, memory_mib: int, limit_mib: int = 512) -> Usage:
    return Usage(pod=name, namespace="shop", memory_bytes=memory_mib * MiB, memory_limit_bytes=limit_mib * MiB)


def snapshot(*pods: PodState, memory: list[Usage] | None = None, lines: list[str] | None = None,
             events: list[str] | None = None) -> Snapshot:
    logs = [ContainerLog(pod=pods[0].name, namespace="shop", container="web", lines=lines)] if lines else []
    return Snapshot(at=NOW, pods=list(pods), usage=memory or [], logs=logs, events=events or [])


def record(*, at: datetime = NOW, status: RunStatus = RunStatus.SUCCEEDED, category: str = "update",
           resources: tuple[str, ...] = ("deployment/web",), **fields: Any) -> ExecutionRecord:
    return ExecutionRecord.model_validate({
        "id": new_record_id(at), "started_at": at, "finished_at": at + timedelta(seconds=20),
        "triggered_by": "cli", "caller": "alice", "intent": "deploy web v2", "status": status,
        "category": category, "duration_seconds": 20.0, "namespaces": ["shop"], "resources": list(resources),
        "commands": [{"index": 1, "argv": ["kubectl", "set", "image", "deployment/web", "web=web:v2", "-n", "shop"],
                      "exit_code": 0 if status is RunStatus.SUCCEEDED else 1, "duration_seconds": 20.0}],
        **fields,
    })


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[RecordStore, AnomalyStore]]:
    records, anomalies = RecordStore(tmp_path), AnomalyStore(tmp_path)
    yield records, anomalies
    anomalies.close()
    records.close()


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    loaded = load_rules()
    assert loaded.problems == ()
    return loaded


def check(r: ExecutionRecord, stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> dict[str, Anomaly]:
    records, anomalies = stores
    found = detect(r, store=records, baselines=Baselines(anomalies), rules=rules, now=NOW)
    by_rule = {a.rule: a for a in found}
    assert len(by_rule) == len(found), "one anomaly per rule and run"
    return by_rule


# -- the default rules ---------------------------------------------------------------------------------------


def test_the_default_rules_are_the_ones_the_issue_names(rules: RuleSet) -> None:
    assert [c.rule.id for c in rules.rules] == [
        "memory_spike", "error_rate_increase", "unexpected_restart", "failure_state", "duration_regression",
        "flaky", "new_error_pattern",
    ]
    assert {c.rule.id: c.rule.severity for c in rules.rules}["unexpected_restart"] == "P1"


def test_a_healthy_run_has_no_anomalies(stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> None:
    r = record(
        before=snapshot(pod("web-old"), memory=[usage("web-old", 200)], lines=["INFO ok"] * 50),
        after=snapshot(pod(), memory=[usage("web-7d9f-abcde", 220)], lines=["INFO ok"] * 49 + ["ERROR once"]),
        log_analysis=[LogAnalysis(pod="web-7d9f-abcde", namespace="shop", container="web",
                                  templates=[TemplateCount(template="GET /healthz <*>", count=40)])],
    )
    assert check(r, stores, rules) == {}


def test_memory_spike_of_more_than_twenty_points_of_the_limit_is_flagged(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    # a rollout replaces the pods: they are compared by workload, not by name
    r = record(before=snapshot(pod("web-old"), memory=[usage("web-old", 200)]),
               after=snapshot(pod(), memory=[usage("web-7d9f-abcde", 360)]))
    spike = check(r, stores, rules)["memory_spike"]

    assert spike.severity == "P2" and spike.target == "deployment/web" and spike.namespace == "shop"
    assert spike.actual == "deployment/web: 39.1% -> 70.3% of the limit (+31.2 pp)"
    assert spike.expected.startswith("memory use within 20 percentage points")
    assert spike.evidence == ["web-7d9f-abcde: 377487360 of 536870912 bytes (70.3%)"]
    assert spike.suggested_action


def test_memory_growth_within_twenty_points_or_without_a_limit_is_not(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    within = record(before=snapshot(pod("a"), memory=[usage("a", 200)]),
                    after=snapshot(pod(), memory=[usage(pod().name, 300)]))
    no_limit = record(before=snapshot(pod("a"), memory=[Usage(pod="a", namespace="shop", memory_bytes=MiB)]),
                      after=snapshot(pod(), memory=[Usage(pod=pod().name, namespace="shop", memory_bytes=900 * MiB)]))
    assert "memory_spike" not in check(within, stores, rules)
    assert "memory_spike" not in check(no_limit, stores, rules)


def test_an_error_rate_more_than_twice_the_before_window_is_flagged(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    before = ["INFO request ok"] * 98 + ['{"level":"error","msg":"upstream timeout"}'] * 2
    after = ["INFO request ok"] * 90 + ["ERROR database connection refused"] * 10
    r = record(before=snapshot(pod("web-old"), lines=before), after=snapshot(pod(), lines=after))
    flagged = check(r, stores, rules)["error_rate_increase"]

    assert flagged.severity == "P2"
    assert flagged.expected == "an error rate at most 2x the before-window (2.0% of 100 lines)"
    assert flagged.actual == "10.0% of log lines are errors (10 of 100)"
    assert flagged.evidence[0] == "web-7d9f-abcde/web: ERROR database connection refused"


def test_the_same_error_rate_as_before_is_not(stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> None:
    lines = ["INFO ok"] * 90 + ["E0302 12:00:00.000000 1 main.go:10] retrying"] * 10
    r = record(before=snapshot(pod("web-old"), lines=lines), after=snapshot(pod(), lines=lines))
    assert "error_rate_increase" not in check(r, stores, rules)


def test_an_unexpected_restart_is_a_p1(stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> None:
    r = record(category="scale",
               before=snapshot(pod(restarts=1)),
               after=snapshot(pod(restarts=3, last_termination_reason="Error", last_exit_code=1),
                              events=["Warning BackOff (x2) Pod/web-7d9f-abcde: Back-off restarting failed container"]))
    restart = check(r, stores, rules)["unexpected_restart"]

    assert restart.severity == "P1" and restart.target == "deployment/web"
    assert restart.actual == "web-7d9f-abcde restarted 2 time(s) (last: Error, exit code 1)"
    assert restart.evidence == ["Warning BackOff (x2) Pod/web-7d9f-abcde: Back-off restarting failed container"]


def test_restarts_from_before_the_change_are_not_unexpected(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    old = pod(restarts=4, last_termination_reason="OOMKilled")  # an OOM kill of last week, no new restart
    found = check(record(before=snapshot(old), after=snapshot(old)), stores, rules)
    assert "unexpected_restart" not in found and "failure_state" not in found


@pytest.mark.parametrize(
    ("state", "severity"),
    [
        ({"waiting_reason": "CrashLoopBackOff", "ready": False}, "P1"),
        ({"restarts": 1, "last_termination_reason": "OOMKilled", "ready": False}, "P1"),
        ({"waiting_reason": "ImagePullBackOff", "phase": "Pending", "ready": False}, "P2"),
        ({"phase": "Failed", "ready": False}, "P2"),  # evicted pods are Failed without container states
        ({"ready": False}, "P3"),  # running, readiness probe failing
    ],
)
def test_pods_in_failure_states_are_flagged_by_how_bad_the_state_is(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet, state: dict[str, Any], severity: str
) -> None:
    r = record(before=snapshot(pod("web-old")), after=snapshot(pod(**state)))
    failure = check(r, stores, rules)["failure_state"]
    assert failure.severity == severity and failure.target == "deployment/web"
    assert failure.actual.startswith("web-7d9f-abcde: ")


# -- flaky operations -----------------------------------------------------------------------------------------


def test_a_flaky_pair_is_flagged(stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> None:
    records, _ = stores
    earlier = record(at=NOW - timedelta(hours=3), status=RunStatus.SUCCEEDED)
    records.save(earlier)
    failed = record(status=RunStatus.FAILED, failed_step="kubectl rollout status deployment/web -n shop")
    records.save(failed)

    flaky = check(failed, stores, rules)["flaky"]

    assert flaky.severity == "P3" and flaky.target == "deployment/web" and flaky.run_id == failed.id
    assert flaky.actual == "this run failed; in the last 24 h 1 succeeded and 0 failed"
    assert flaky.evidence == [f"{earlier.id} succeeded at {earlier.started_at.isoformat()}"]


def test_the_same_results_other_operations_and_old_runs_are_not_flaky(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    records, _ = stores
    records.save(record(at=NOW - timedelta(hours=30)))  # outside the 24 h window
    records.save(record(at=NOW - timedelta(hours=2), category="scale"))  # another operation on the target
    records.save(record(at=NOW - timedelta(hours=1), resources=("deployment/api",)))  # another target
    records.save(record(at=NOW - timedelta(hours=1), status=RunStatus.FAILED))  # failed before, fails again

    assert "flaky" not in check(record(status=RunStatus.FAILED), stores, rules)


# -- log patterns and similar failures -----------------------------------------------------------------------


def test_a_new_log_error_template_is_flagged_and_a_known_one_is_not(
    stores: tuple[RecordStore, AnomalyStore], rules: RuleSet
) -> None:
    def analysed(new: bool) -> ExecutionRecord:
        return record(after=snapshot(pod()), log_analysis=[LogAnalysis(
            pod="web-7d9f-abcde", namespace="shop", container="web", errors=7, first_error="connect refused 10.0.0.7",
            templates=[TemplateCount(template="connect refused <*>", count=7, new=new),
                       TemplateCount(template="GET /healthz <*>", count=40)],
        )])

    found = check(analysed(new=True), stores, rules)["new_error_pattern"]
    assert found.severity == "P2" and found.target == "deployment/web"
    assert found.actual == "1 new error pattern(s): connect refused <*>"
    assert found.evidence == ["web-7d9f-abcde/web: connect refused <*> (x7)"]

    assert "new_error_pattern" not in check(analysed(new=False), stores, rules)


def test_similar_past_failures_are_linked(stores: tuple[RecordStore, AnomalyStore], rules: RuleSet) -> None:
    records, _ = stores
    step = "kubectl rollout status deployment/web -n shop"
    error = "exit 1: error: timed out waiting for the condition"
    same_step = record(at=NOW - timedelta(days=3), status=RunStatus.FAILED, failed_step=step, error="other")
    same_error = record(at=NOW - timedelta(days=2), status=RunStatus.FAILED, resources=("deployment/api",),
                        failed_step="kubectl rollout status deployment/api -n shop", error=error)
    succeeded = record(at=NOW - timedelta(days=1))
    for r in (same_step, same_error, succeeded):
        records.save(r)
    failed = record(status=RunStatus.FAILED, failed_step=step, error=error,
                    before=snapshot(pod("web-old")), after=snapshot(pod(waiting_reason="CrashLoopBackOff")))
    records.save(failed)

    found = check(failed, stores, rules)["failure_state"]
    assert found.similar_runs == [same_error.id, same_step.id]


# -- operators' rules ----------------------------------------------------------------------------------------


def write_rules(data_dir: Path, name: str, text: str) -> Path:
    folder = data_dir / RULES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


OPERATOR_RULE = """
rules:
  - id: team.big_scale
    severity: P3
    condition: record.category == 'scale' && record.commands.exists(c, c.command.contains('--replicas=50'))
    expected: "'scale in small steps'"
    actual: "record.commands[0].command"
    suggested_action: Scale in steps of ten.
"""


def test_operators_add_rules_replace_defaults_and_turn_them_off(
    tmp_path: Path, stores: tuple[RecordStore, AnomalyStore]
) -> None:
    write_rules(tmp_path, "10-team.yaml", OPERATOR_RULE)
    write_rules(tmp_path, "20-tuning.yaml", """
rules:
  - id: memory_spike
    severity: P1
    params: {increase_pp: 5.0}
    condition: usage.workloads.exists(w, w.increase_pp > params.increase_pp)
    expected: "'at most +5 pp'"
    actual: "fixed(usage.max_increase_pp, 1) + ' pp'"
  - id: flaky
    enabled: false
    severity: P3
    condition: "false"
    expected: "''"
    actual: "''"
""")
    rules = load_rules(tmp_path)
    ids = [c.rule.id for c in rules.rules]
    assert "team.big_scale" in ids and "flaky" not in ids and rules.problems == ()

    scale = record(category="scale", commands=[
        {"index": 1, "argv": ["kubectl", "scale", "deployment/web", "--replicas=50"], "exit_code": 0,
         "duration_seconds": 1.0}],
        before=snapshot(pod("a"), memory=[usage("a", 100)]), after=snapshot(pod(), memory=[usage(pod().name, 140)]))
    found = check(scale, stores, rules)
    assert found["team.big_scale"].actual == "kubectl scale deployment/web --replicas=50"
    assert found["memory_spike"].severity == "P1" and found["memory_spike"].actual == "7.8 pp"


def test_a_bad_rule_file_is_named_and_the_other_rules_still_run(
    tmp_path: Path, stores: tuple[RecordStore, AnomalyStore], caplog: pytest.LogCaptureFixture
) -> None:
    write_rules(tmp_path, "broken.yaml", "rules: [unclosed\n")
    write_rules(tmp_path, "mixed.yaml", """
rules:
  - id: typo
    severity: P2
    condition: afer.pods.size() > 0
    expected: "''"
    actual: "''"
  - id: wrong_field
    severity: P2
    condition: after.pods.exists(p, p.restart_count > 0)
    expected: "''"
    actual: "''"
  - id: no_severity
    condition: "true"
    expected: "''"
    actual: "''"
  - just a string
""" + OPERATOR_RULE.removeprefix("\nrules:\n"))
    with caplog.at_level(logging.WARNING):
        rules = load_rules(tmp_path)

    problems = "\n".join(rules.problems)
    assert f"{tmp_path / RULES_DIR / 'broken.yaml'}: not valid YAML" in problems
    assert f"{tmp_path / RULES_DIR / 'mixed.yaml'}: rule typo: `condition`" in problems and "afer" in problems
    assert "rule wrong_field: `condition` reads a field that does not exist: 'restart_count'" in problems
    assert "rule no_severity: severity: Field required" in problems
    assert "rule #4: rule: Input should be a valid dictionary" in problems
    assert len(rules.problems) == 5 and "the other rules still run" in problems
    assert "team.big_scale" in [c.rule.id for c in rules.rules] and "memory_spike" in [c.rule.id for c in rules.rules]
    assert "rule typo" in caplog.text
    assert validate_rule_file(tmp_path / RULES_DIR / "mixed.yaml") == list(rules.problems[1:])


def test_a_rule_that_fails_at_run_time_is_logged_once_and_detection_goes_on(
    tmp_path: Path, stores: tuple[RecordStore, AnomalyStore], caplog: pytest.LogCaptureFixture
) -> None:
    write_rules(tmp_path, "fragile.yaml", """
rules:
  - id: fragile
    severity: P2
    condition: after.pods[0].restarts + 1.5 > 0.0
    expected: "''"
    actual: "''"
  - id: odd_severity
    severity: P2
    severity_expression: "'P' + string(size(after.pods) + 8)"
    condition: size(after.pods) > 0
    expected: "'no pods'"
    actual: "string(size(after.pods)) + ' pod(s)'"
""")
    rules = load_rules(tmp_path)
    assert rules.problems == ()
    crashing = record(before=snapshot(pod("web-old")), after=snapshot(pod(waiting_reason="CrashLoopBackOff")))

    with caplog.at_level(logging.WARNING):
        first = check(crashing, stores, rules)
        second = check(crashing, stores, rules)

    assert "failure_state" in first and "failure_state" in second and "fragile" not in first
    assert caplog.text.count("anomaly rule fragile") == 1 and "No such overload" in caplog.text
    assert first["odd_severity"].severity == "P2" and first["odd_severity"].actual == "1 pod(s)"
    assert caplog.text.count("`severity_expression` gave 'P9'") == 1


def test_rules_are_bounded(tmp_path: Path) -> None:
    assert comprehension_depth("a.exists(x, x.b.exists(y, y.c.all(z, z)))") == 3
    assert comprehension_depth("a.exists(x, 'b.map(y, (')') && c.map(y, y)") == 1
    write_rules(tmp_path, "costly.yaml", f"""
rules:
  - id: cubic
    severity: P3
    condition: after.pods.exists(a, after.pods.exists(b, after.pods.exists(c, a.name == c.name)))
    expected: "''"
    actual: "''"
  - id: long
    severity: P3
    condition: "{' || '.join(['true'] * 600)}"
    expected: "''"
    actual: "''"
  - id: growing
    severity: P3
    condition: "'a'.replace('a', 'aaaaaaaa').replace('a', 'aaaaaaaa') != ''"
    expected: "''"
    actual: "''"
""")
    problems = "\n".join(load_rules(tmp_path).problems)
    assert "rule cubic: `condition` nests comprehensions (exists, all, map, filter) 3 deep; the limit is 2" in problems
    assert "rule long: `condition` is 4796 characters long; the limit is 2000" in problems
    assert "rule growing: `condition`" in problems and "replace" in problems
