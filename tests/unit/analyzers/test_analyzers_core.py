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
from operate_mcp.analyzers.registry import ALL, CORE, resources_read, run_analyzers
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


AUTH_DENIED = (
    'failed to pull and unpack image "docker.io/acme/api:2": failed to resolve reference "docker.io/acme/api:2": '
    "pull access denied, repository does not exist or may require authorization: server message: "
    "insufficient_scope: authorization failed"
)


def denied_pull(pull_secrets: list[str] | None = None, secret_names: list[str] | None = None) -> dict[str, Any]:
    """The recorded image pull failure, as a registry that wants credentials answers it."""
    state = objects("imagepull")
    pod = state["pods"][0]
    pod["status"]["containerStatuses"][0]["state"]["waiting"] = {"reason": "ErrImagePull", "message": AUTH_DENIED}
    if pull_secrets is not None:
        pod["spec"]["imagePullSecrets"] = [{"name": n} for n in pull_secrets]
    if secret_names is not None:
        ns = pod["metadata"]["namespace"]
        state["secretnames"] = [{"kind": "Secret", "metadata": {"name": n, "namespace": ns}} for n in secret_names]
    return state


def test_a_private_image_without_pull_secrets_says_the_pod_has_none():
    [pod] = run_analyzers([PodAnalyzer()], denied_pull())
    assert pod.problem == (
        "container app cannot pull image registry.example/web:1.4.2: ErrImagePull; "
        "the registry denied access and the pod has no imagePullSecrets"
    )
    assert "spec.imagePullSecrets: none" in texts(pod, "spec")
    assert f"status.containerStatuses[app].state.waiting.message: {AUTH_DENIED}" in texts(pod, "status")


def test_pull_secrets_that_do_not_exist_are_named_and_existing_ones_were_refused():
    [missing] = run_analyzers([PodAnalyzer()], denied_pull(["regcred"], secret_names=["other"]))
    assert missing.problem.endswith("the registry denied access and its imagePullSecrets regcred do not exist")
    assert 'spec.imagePullSecrets: ["regcred"]' in texts(missing, "spec")
    assert "Secret/regcred: not found in namespace fx-imagepull" in texts(missing, "related-object")
    [refused] = run_analyzers([PodAnalyzer()], denied_pull(["regcred"], secret_names=["regcred"]))
    assert refused.problem.endswith("its imagePullSecrets (regcred) were not accepted")
    assert texts(refused, "related-object") == []


def test_an_image_that_does_not_exist_says_nothing_about_credentials():
    [pod] = findings("imagepull", "Pod")
    assert "imagePullSecrets" not in pod.problem
    assert not any("imagePullSecrets" in t for t in texts(pod))


def test_a_command_missing_from_the_image_is_a_start_error_quoting_the_runtime():
    state = objects("crashloop-restarting")
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: "
        'unable to start container process: error during container init: exec: "gunicorn": executable file not '
        "found in $PATH: unknown"
    )
    pod = state["pods"][0]
    pod["spec"]["containers"][0]["command"] = ["gunicorn", "app:wsgi"]
    status = pod["status"]["containerStatuses"][0]
    status["lastState"]["terminated"].update(exitCode=128, reason="StartError", message=message)
    [found] = run_analyzers([PodAnalyzer()], state)
    assert found.problem == (
        'container app cannot start its command: exec: "gunicorn": executable file not found in $PATH '
        "(exit code 128, StartError); it has restarted 2 times"
    )
    assert f"status.containerStatuses[app].lastState.terminated.message: {message}" in texts(found, "status")
    assert 'spec.containers[app].command: ["gunicorn","app:wsgi"]' in texts(found, "spec")


def with_configmaps(state: dict[str, Any], data: dict[str, dict[str, str]]) -> dict[str, Any]:
    ns = state["pods"][0]["metadata"]["namespace"]
    state["configmaps"] = [
        {"kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": d} for name, d in data.items()
    ]
    return state


def test_a_config_error_proves_the_configmap_is_missing_when_configmaps_were_read():
    state = with_configmaps(objects("config-error"), {"kube-root-ca.crt": {"ca.crt": "..."}})
    [pod] = run_analyzers([PodAnalyzer()], state)
    assert "ConfigMap/app-config: not found in namespace fx-config-error" in texts(pod, "related-object")
    assert 'spec.containers[app].env[LOG_LEVEL].valueFrom.configMapKeyRef: {"key":"log-level","name":"app-config"}' \
        in texts(pod, "spec")


def test_without_configmaps_read_nothing_is_said_about_them():
    [pod] = findings("config-error", "Pod")
    assert texts(pod, "related-object") == []


def test_a_missing_configmap_key_lists_the_keys_the_configmap_has_never_its_values():
    state = with_configmaps(objects("config-error"), {"app-config": {"level": "debug", "mode": "secret-ish"}})
    waiting = state["pods"][0]["status"]["containerStatuses"][0]["state"]["waiting"]
    waiting["message"] = "couldn't find key log-level in ConfigMap fx-config-error/app-config"
    [pod] = run_analyzers([PodAnalyzer()], state)
    assert pod.problem == f"container app cannot start: {waiting['message']}"
    assert "ConfigMap/app-config: exists; keys: level, mode" in texts(pod, "related-object")
    assert not any("debug" in t or "secret-ish" in t for t in texts(pod))


def test_a_missing_secret_key_says_the_secret_exists_by_name_only():
    state = objects("config-error")
    pod = state["pods"][0]
    ns = pod["metadata"]["namespace"]
    pod["spec"]["containers"][0]["env"] = [
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}
    ]
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    waiting["message"] = f"couldn't find key password in Secret {ns}/db"
    state["secretnames"] = [{"kind": "Secret", "metadata": {"name": "db", "namespace": ns}}]
    [found] = run_analyzers([PodAnalyzer()], state)
    assert 'spec.containers[app].env[DB_PASSWORD].valueFrom.secretKeyRef: {"key":"password","name":"db"}' \
        in texts(found, "spec")
    assert texts(found, "related-object") == [f"Secret/db: exists in namespace {ns}"]
    state["secretnames"] = []
    waiting["message"] = 'secret "db" not found'
    [gone] = run_analyzers([PodAnalyzer()], state)
    assert texts(gone, "related-object") == [f"Secret/db: not found in namespace {ns}"]


def mount_failure(configmaps: dict[str, dict[str, str]] | None) -> dict[str, Any]:
    """The recorded config error turned into a pod whose ConfigMap volume cannot be mounted."""
    state = objects("config-error")
    pod = state["pods"][0]
    pod["spec"]["containers"][0].pop("env")
    pod["spec"]["volumes"].append({"name": "config", "configMap": {"name": "api-config"}})
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    event = state["events"][0]
    event.update(reason="FailedMount", message='MountVolume.SetUp failed for volume "config" : configmap "api-config" '
                 "not found")
    return with_configmaps(state, configmaps) if configmaps is not None else state


def test_a_failed_mount_names_the_configmap_that_does_not_exist():
    [pod] = run_analyzers([PodAnalyzer()], mount_failure({"kube-root-ca.crt": {"ca.crt": "..."}}))
    assert pod.problem == (
        "container app cannot start: its volumes cannot be mounted; ConfigMap api-config does not exist"
    )
    assert texts(pod, "spec") == ["spec.volumes[config].configMap.name: api-config"]
    assert texts(pod, "related-object") == ["ConfigMap/api-config: not found in namespace fx-config-error"]
    assert any('configmap "api-config" not found' in t for t in texts(pod, "event"))
    [unread] = run_analyzers([PodAnalyzer()], mount_failure(None))
    assert unread.problem == "container app cannot start: its volumes cannot be mounted"


def liveness_kills(killed_at: str, newest: str | None = None) -> dict[str, Any]:
    """The recovered pod (Ready, restarted twice), its last restart a liveness kill at `killed_at`."""
    state = objects("recovered")
    pod = state["pods"][0]
    pod["spec"]["containers"][0]["livenessProbe"] = {"httpGet": {"path": "/healthz", "port": 8080}}
    pod["status"]["containerStatuses"][0]["lastState"]["terminated"].update(exitCode=137, reason="Error")
    base = {k: v for k, v in state["events"][0].items() if k not in ("reason", "message", "type", "count")}
    for reason, kind, message, count in (
        ("Unhealthy", "Warning", "Liveness probe failed: HTTP probe failed with statuscode: 500", 6),
        ("Killing", "Normal", "Container app failed liveness probe, will be restarted", 2),
    ):
        state["events"].append(
            {**copy.deepcopy(base), "reason": reason, "type": kind, "message": message, "count": count,
             "metadata": {"name": f"liveness-{reason}", "namespace": "fx-recovered"}, "lastTimestamp": killed_at}
        )
    if newest:
        state["events"][0]["lastTimestamp"] = newest
    return state


def test_a_ready_pod_restarted_by_its_liveness_probe_is_reported():
    [pod] = run_analyzers([PodAnalyzer()], liveness_kills("2026-11-29T23:26:44Z"))
    assert pod.severity == "error"
    assert pod.problem == (
        "container app is restarted by its failing liveness probe: it exited with code 137 (Error) "
        "and has restarted 2 times"
    )
    assert "Normal Killing (x2): Container app failed liveness probe, will be restarted" in texts(pod, "event")
    assert "Warning Unhealthy (x6): Liveness probe failed: HTTP probe failed with statuscode: 500" in texts(pod)
    assert 'spec.containers[app].livenessProbe: {"httpGet":{"path":"/healthz","port":8080}}' in texts(pod, "spec")


def test_an_old_liveness_kill_or_one_before_the_last_restart_is_history():
    assert run_analyzers([PodAnalyzer()], liveness_kills("2026-11-29T23:26:40Z")) == []  # before the last start
    later = liveness_kills("2026-11-29T23:26:44Z", newest="2026-11-29T23:40:00Z")  # 13 minutes of quiet since
    assert run_analyzers([PodAnalyzer()], later) == []


def test_diagnose_reads_what_the_pod_analyzer_cites_about_configmaps_and_secrets():
    """The pod analyzer uses ConfigMaps and Secret names when read, never requires them (validation fails on
    what it cannot read); diagnose reads them for the ConfigMap and Ingress analyzers."""
    assert {"configmaps", "secretnames"} <= set(resources_read(ALL))
    assert "secrets" not in resources_read(ALL)


def test_an_unschedulable_pod_cites_the_part_of_its_spec_the_scheduler_refused():
    [pod] = findings("unschedulable", "Pod")
    assert texts(pod, "spec") == ["spec.containers[app].resources.requests.cpu: 64"]  # not memory: that fits
    state = objects("unschedulable")
    placed = state["pods"][0]
    placed["spec"]["nodeSelector"] = {"disk": "nvme"}
    condition = placed["status"]["conditions"][0]
    condition["message"] = "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."
    [pod] = run_analyzers([PodAnalyzer()], state)
    assert texts(pod, "spec") == ['spec.nodeSelector: {"disk":"nvme"}']
