"""The core analyzers (Pod, Deployment) over objects recorded on the test bed (tests/fixtures/analyzers/):
each state is recognised, cites the lines that prove it, and a resolved or healthy state says nothing."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.analyzers.deployment import DeploymentAnalyzer
from operate_mcp.analyzers.pod import PodAnalyzer
from operate_mcp.analyzers.registry import CORE, resources_read, run_analyzers
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Evidence, Finding

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyzers"
SCENARIOS = sorted(p.stem for p in FIXTURES.glob("*.json"))


def objects(scenario: str) -> dict[str, list[dict[str, Any]]]:
    return json.loads((FIXTURES / f"{scenario}.json").read_text())["objects"]


def findings(scenario: str, kind: str | None = None) -> list[Finding]:
    found = run_analyzers(CORE, objects(scenario))
    return [f for f in found if kind is None or f.kind == kind]


def leaves(obj: Any) -> set[str]:
    """Every scalar in a decoded JSON document, as kubectl prints it."""
    if isinstance(obj, dict):
        return {v for item in obj.values() for v in leaves(item)}
    if isinstance(obj, list):
        return {v for item in obj for v in leaves(item)}
    return {json.dumps(obj) if isinstance(obj, bool) else str(obj)}


def texts(f: Finding, source: str | None = None) -> list[str]:
    return [e.text for e in f.evidence if source is None or e.source == source]


def test_crash_looping_pods_are_reported_with_their_last_exit():
    pods = findings("crashloop", "Pod")
    assert len(pods) == 2
    for f in pods:
        assert f.severity == "error"
        assert "container app is crash-looping: it exited with code 1 (Error)" in f.problem
        assert "status.containerStatuses[app].state.waiting.reason: CrashLoopBackOff" in texts(f)
        assert "status.containerStatuses[app].lastState.terminated.exitCode: 1" in texts(f)
        assert any(t.startswith("Warning BackOff") and "Back-off restarting failed container" in t
                   for t in texts(f, "event"))


def test_a_pod_between_two_crashes_is_still_crash_looping():
    """Running again and not ready, with restarts and BackOff events: the loop, not a slow start."""
    [pod] = findings("crashloop-restarting", "Pod")
    assert "crash-looping" in pod.problem and "restarted 2 times" in pod.problem
    assert "status.containerStatuses[app].lastState.terminated.reason: Error" in texts(pod)


def test_rollout_past_its_progress_deadline_is_critical_and_cites_its_pods():
    [deployment] = findings("crashloop", "Deployment")
    assert deployment.severity == "critical"
    assert deployment.problem == "0 of 2 replicas available; the rollout exceeded its progress deadline"
    assert any("ProgressDeadlineExceeded" in t and "has timed out progressing" in t for t in texts(deployment))
    cited = texts(deployment, "related-object")
    assert len(cited) == 2 and all(t.startswith("Pod/api-") and "crash-looping" in t for t in cited)


def test_oom_killed_container_names_exit_137_and_its_memory_limit():
    [pod] = findings("oomkilled", "Pod")
    assert pod.problem.startswith("container app was OOMKilled (exit code 137)")
    assert pod.problem.endswith("its memory limit is 64Mi")
    assert "status.containerStatuses[app].lastState.terminated.reason: OOMKilled" in texts(pod)
    assert "spec.containers[app].resources.limits.memory: 64Mi" in texts(pod, "spec")


def test_image_pull_failure_cites_the_registry_message():
    [pod] = findings("imagepull", "Pod")
    assert pod.problem == "container app cannot pull image registry.example/web:1.4.2: ImagePullBackOff"
    assert 'status.containerStatuses[app].state.waiting.message: Back-off pulling image "registry.example/web:1.4.2"' \
        in texts(pod)
    assert any("Failed to pull image: rpc error: code = NotFound" in t for t in texts(pod, "event"))


def test_missing_configmap_is_reported_as_a_container_config_error():
    [pod] = findings("config-error", "Pod")
    assert pod.severity == "error"
    assert pod.problem == 'container app cannot start: configmap "app-config" not found'
    assert 'Warning Failed (x4): Error: configmap "app-config" not found' in texts(pod, "event")


def test_unschedulable_pod_carries_the_schedulers_message():
    [pod] = findings("unschedulable", "Pod")
    assert pod.problem.startswith("pod cannot be scheduled: 0/2 nodes are available: 2 Insufficient cpu")
    assert any(t.startswith("status.conditions[PodScheduled]: False (Unschedulable)") for t in texts(pod, "status"))
    assert any(t.startswith("Warning FailedScheduling") for t in texts(pod, "event"))


def test_failing_readiness_probe_is_reported_from_unhealthy_events():
    [pod] = findings("unready", "Pod")
    assert pod.problem == "container app is running but not ready: its readiness probe fails"
    assert any("Readiness probe failed: HTTP probe failed with statuscode: 503" in t for t in texts(pod, "event"))
    [deployment] = findings("unready", "Deployment")
    assert deployment.problem == "0 of 1 replicas available"


def test_a_pod_ready_again_is_not_reported():
    recovered = objects("recovered")
    assert recovered["pods"][0]["status"]["containerStatuses"][0]["restartCount"] >= 2  # it did crash
    assert any(e["reason"] == "BackOff" for e in recovered["events"])  # and the events still say so
    assert run_analyzers(CORE, recovered) == []


def test_healthy_workloads_and_a_completed_job_report_nothing():
    healthy = objects("healthy")
    assert any(p["status"]["phase"] == "Succeeded" for p in healthy["pods"])
    assert run_analyzers(CORE, healthy) == []


def test_a_partly_available_deployment_is_a_warning():
    partial = objects("healthy")
    partial["deployments"][0]["status"]["availableReplicas"] = 2
    [f] = run_analyzers([DeploymentAnalyzer()], partial)
    assert (f.severity, f.problem) == ("warning", "2 of 3 replicas available")


def test_a_deployment_scaled_to_zero_is_not_reported():
    idle = objects("crashloop")
    idle["deployments"][0]["spec"]["replicas"] = 0
    assert run_analyzers([DeploymentAnalyzer()], idle) == []


def test_terminating_pods_are_not_reported():
    leaving = objects("crashloop")
    for pod in leaving["pods"]:
        pod["metadata"]["deletionTimestamp"] = "2026-11-29T23:30:00Z"
    assert run_analyzers([PodAnalyzer()], leaving) == []


def test_events_of_an_earlier_pod_with_the_same_name_are_not_cited():
    """StatefulSet pods come back under the same name; the events of the one before are not evidence."""
    state = objects("config-error")
    for event in state["events"]:
        event["involvedObject"]["uid"] = "an-earlier-pod"
    [pod] = run_analyzers(CORE, state)
    assert texts(pod, "event") == []


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_evidence_text_was_read_not_invented(scenario):
    """Each status or spec line quotes a value present in the objects, each event line an event's message,
    each related-object line a finding of that object."""
    state = objects(scenario)
    values = leaves(state)
    messages = {e["message"] for e in state["events"]}
    found = run_analyzers(CORE, state)
    problems = {(f.kind, f.name): f.problem for f in found}
    for f in found:
        for e in f.evidence:
            if e.source in ("status", "spec"):
                # `path: value`, or for a condition `path: Status (Reason): message`
                shown = e.text.split(": ", 1)[1]
                pieces = [p.strip(" ()") for p in re.split(r"\): | \(|: ", shown) if p.strip(" ()")]
                assert all(any(p in v for v in values) for p in pieces) or shown == "0", e
            elif e.source == "event":
                assert any(e.text.endswith(m) for m in messages), e
            else:
                kind_name, problem = e.text.split(": ", 1)
                kind, name = kind_name.split("/")
                assert problems[(kind, name)] == problem, e


def test_findings_have_the_documented_json_shape():
    [pod] = findings("oomkilled", "Pod")
    data = json.loads(pod.model_dump_json())
    assert set(data) == {"kind", "name", "namespace", "problem", "severity", "evidence"}
    assert all(set(e) == {"source", "text"} for e in data["evidence"])
    assert data["kind"] == "Pod" and data["namespace"] == "fx-oomkilled"
    assert Finding.model_validate(data) == pod


def test_findings_come_worst_first():
    severities = [f.severity for f in findings("crashloop")]
    assert severities == ["critical", "error", "error"]


def test_analyzers_do_not_change_what_they_are_given():
    state = objects("crashloop")
    before = copy.deepcopy(state)
    first = run_analyzers(CORE, state)
    assert state == before
    assert run_analyzers(CORE, state) == first


def test_the_registry_says_what_the_caller_must_read():
    assert resources_read(CORE) == ["pods", "events", "deployments", "replicasets"]
    assert {a.name for a in CORE} == {"pod", "deployment"}


def test_related_follows_owners_from_a_deployment_to_its_pods():
    state = objects("crashloop")
    related = Related(state)
    [deployment] = state["deployments"]
    assert [o["kind"] for o in related.owned(deployment)] == ["ReplicaSet"]
    assert sorted(p["metadata"]["name"] for p in related.pods_of(deployment)) == sorted(
        p["metadata"]["name"] for p in state["pods"]
    )


def test_evidence_lines_read_like_kubectl():
    assert Evidence.status("status.readyReplicas", 0).text == "status.readyReplicas: 0"
    assert Evidence.spec("spec.paused", True).text == "spec.paused: true"
    assert Evidence.related("Pod", "web-1", "not ready").text == "Pod/web-1: not ready"
