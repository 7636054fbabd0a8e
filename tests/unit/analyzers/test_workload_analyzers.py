"""The workload analyzers (ReplicaSet, StatefulSet, DaemonSet, Job, CronJob, HPA, PDB) over objects recorded
on the test bed (tests/fixtures/analyzers/workload-*.json, made by record.py): each state is recognised and
cites the lines that prove it; the healthy or resolved counterpart says nothing. States the bed cannot reach
(a day-old CronJob, an autoscaler at its maximum for ten minutes, a schedule the API server rejects) are
recorded states edited by hand, and each test says so."""

from __future__ import annotations

import copy
import json
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.analyzers.base import Analyzer
from operate_mcp.analyzers.cronjob import CronJobAnalyzer, schedule_error
from operate_mcp.analyzers.daemonset import DaemonSetAnalyzer
from operate_mcp.analyzers.hpa import HPAAnalyzer
from operate_mcp.analyzers.job import JobAnalyzer
from operate_mcp.analyzers.pdb import PDBAnalyzer, selects
from operate_mcp.analyzers.registry import CORE, resources_read, run_analyzers
from operate_mcp.analyzers.replicaset import ReplicaSetAnalyzer
from operate_mcp.analyzers.statefulset import StatefulSetAnalyzer
from operate_mcp.model.finding import Finding

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "analyzers"
WORKLOAD_SCENARIOS = sorted(p.stem for p in FIXTURES.glob("workload-*.json"))
WORKLOADS: tuple[Analyzer, ...] = (
    ReplicaSetAnalyzer(), StatefulSetAnalyzer(), DaemonSetAnalyzer(), JobAnalyzer(), CronJobAnalyzer(),
    HPAAnalyzer(), PDBAnalyzer(),
)
Objects = dict[str, list[dict[str, Any]]]


def objects(scenario: str) -> Objects:
    return json.loads((FIXTURES / f"{scenario}.json").read_text())["objects"]


def run(state: Objects, kind: str | None = None) -> list[Finding]:
    return [f for f in run_analyzers(WORKLOADS, state) if kind is None or f.kind == kind]


def named(state: Objects, resource: str, name: str) -> dict[str, Any]:
    return next(o for o in state[resource] if o["metadata"]["name"] == name)


def finding(found: list[Finding], name: str, *, containing: str = "") -> Finding:
    [f] = [f for f in found if f.name == name and containing in f.problem]
    return f


def texts(f: Finding, source: str | None = None) -> list[str]:
    return [e.text for e in f.evidence if source is None or e.source == source]


def backdate(obj: dict[str, Any], *paths: str, by_hours: float) -> None:
    """Moves timestamps back (a recorded object made older than the bed can wait for)."""
    for path in paths:
        *parents, leaf = path.split(".")
        holder = obj
        for p in parents:
            holder = holder[p]
        when = datetime.fromisoformat(holder[leaf].replace("Z", "+00:00")) - timedelta(hours=by_hours)
        holder[leaf] = when.strftime("%Y-%m-%dT%H:%M:%SZ")


# ReplicaSet


def test_a_replicaset_that_cannot_create_pods_cites_the_quota_and_its_failed_creates():
    [rs] = run(objects("workload-replicaset-quota"))
    assert (rs.kind, rs.name, rs.severity) == ("ReplicaSet", "cache", "error")
    assert rs.problem.startswith("1 of 3 pods created: pods \"cache-")
    assert "is forbidden: exceeded quota: pods, requested: pods=1, used: pods=1, limited: pods=1" in rs.problem
    assert "status.replicas: 1" in texts(rs) and "spec.replicas: 3" in texts(rs)
    assert any(t.startswith("status.conditions[ReplicaFailure]: True (FailedCreate): pods") for t in texts(rs))
    events = texts(rs, "event")
    assert events[0].startswith("Warning FailedCreate (x4): (combined from similar events): Error creating:")
    assert all("exceeded quota" in t for t in events)


def test_a_replicaset_whose_pods_all_exist_again_is_not_reported_despite_old_failed_creates():
    state = objects("workload-replicaset-quota")
    rs = named(state, "replicasets", "cache")
    rs["status"].update(replicas=3, readyReplicas=3, availableReplicas=3)
    rs["status"].pop("conditions")
    assert any(e["reason"] == "FailedCreate" for e in state["events"])  # the events stay for an hour
    assert run(state) == []


def test_a_replicaset_of_its_own_with_unavailable_pods_cites_them_but_a_deployments_does_not():
    """Edited: the quota's pods all created, one available; then the same ReplicaSet owned by a Deployment."""
    state = objects("workload-replicaset-quota")
    rs = named(state, "replicasets", "cache")
    rs["status"].update(replicas=3, readyReplicas=1, availableReplicas=1)
    rs["status"].pop("conditions")
    [f] = run(state)
    assert (f.severity, f.problem) == ("warning", "1 of 3 replicas available")
    rs["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cache", "uid": "d-1", "controller": True}
    ]
    assert run(state) == []  # the Deployment analyzer reports a Deployment's availability


def test_old_replicasets_scaled_to_zero_are_never_reported():
    state = objects("workload-healthy")
    old = [rs for rs in state["replicasets"] if rs["spec"]["replicas"] == 0]
    assert old, "the healthy fixture rolled its Deployment once"
    old[0]["status"]["conditions"] = [{"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate"}]
    assert run_analyzers([ReplicaSetAnalyzer()], state) == []


# StatefulSet


def test_a_statefulset_waiting_on_a_missing_storage_class_cites_its_pod_and_pending_claim():
    found = run(objects("workload-statefulset-storage"))
    ready = finding(found, "db", containing="replicas ready")
    assert (ready.severity, ready.problem) == ("critical", "0 of 2 replicas ready")
    assert "Pod/db-0: pod cannot be scheduled: 0/2 nodes are available: pod has unbound immediate " \
        "PersistentVolumeClaims. not found" in texts(ready, "related-object")
    assert "PersistentVolumeClaim/data-db-0: status.phase: Pending" in texts(ready)
    assert 'PersistentVolumeClaim/data-db-0: Warning ProvisioningFailed: storageclass.storage.k8s.io "fast-ssd" ' \
        "not found" in texts(ready, "event")


def test_a_volume_claim_template_naming_a_missing_storage_class_is_an_error():
    found = run(objects("workload-statefulset-storage"))
    f = finding(found, "db", containing="StorageClass")
    assert f.severity == "error"
    assert f.problem.startswith("volume claim template data names StorageClass fast-ssd, which does not exist")
    assert texts(f) == ["spec.volumeClaimTemplates[data].spec.storageClassName: fast-ssd",
                        "StorageClass/fast-ssd: not found"]


def test_a_missing_governing_service_is_a_warning():
    found = run(objects("workload-statefulset-storage"))
    f = finding(found, "db", containing="governing Service")
    assert f.severity == "warning"
    assert "spec.serviceName: db-headless" in texts(f, "spec")
    assert "Service/db-headless: not found in namespace fx-workload-statefulset-storage" in texts(f)


def test_a_storage_class_and_service_that_exist_are_not_reported():
    state = objects("workload-statefulset-storage")
    state["storageclasses"] = [{"kind": "StorageClass", "metadata": {"name": "fast-ssd"}}]
    state["services"] = [{"kind": "Service", "metadata": {"name": "db-headless", "namespace": "x"}}]
    assert [f.problem for f in run(state)] == ["0 of 2 replicas ready"]


def test_a_service_or_storage_class_list_that_could_not_be_read_proves_nothing_missing():
    state = objects("workload-statefulset-storage")
    del state["services"], state["storageclasses"]  # e.g. listing them was forbidden
    assert [f.problem for f in run(state)] == ["0 of 2 replicas ready"]


# DaemonSet


def test_a_daemonset_with_no_ready_pod_is_critical_and_cites_its_crash_looping_pods():
    [ds] = run(objects("workload-daemonset-crashloop"))
    assert (ds.kind, ds.severity, ds.problem) == ("DaemonSet", "critical", "0 of 2 pods ready")
    assert {"status.desiredNumberScheduled: 2", "status.numberReady: 0", "status.numberUnavailable: 2"} \
        <= set(texts(ds))
    cited = texts(ds, "related-object")
    assert len(cited) == 2 and all(t.startswith("Pod/agent-") and "crash-looping" in t for t in cited)


def test_daemonset_pods_on_nodes_that_should_not_run_them_are_reported():
    """Edited status: the bed's nodes are shared, so no test relabels one to strand a pod."""
    state = objects("workload-healthy")
    named(state, "daemonsets", "agent")["status"]["numberMisscheduled"] = 1
    [f] = run(state)
    assert (f.severity, f.problem) == ("warning", "1 of its pods run on nodes that should not run one")
    assert texts(f) == ["status.numberMisscheduled: 1"]


# Job


def test_a_job_past_its_backoff_limit_is_an_error_with_the_limit_and_the_event():
    f = finding(run(objects("workload-job-failed")), "backoff")
    assert (f.kind, f.severity) == ("Job", "error")
    assert f.problem == "job failed (BackoffLimitExceeded): Job has reached the specified backoff limit"
    assert texts(f, "status") == [
        "status.conditions[Failed]: True (BackoffLimitExceeded): Job has reached the specified backoff limit",
        "status.failed: 1",
    ]
    assert texts(f, "spec") == ["spec.backoffLimit: 1"]
    assert texts(f, "event") == ["Warning BackoffLimitExceeded: Job has reached the specified backoff limit"]


def test_a_job_past_its_deadline_names_the_deadline():
    f = finding(run(objects("workload-job-failed")), "deadline")
    assert f.problem == "job failed (DeadlineExceeded): Job was active longer than specified deadline"
    assert texts(f, "spec") == ["spec.activeDeadlineSeconds: 3"]


def test_a_failed_job_cites_the_last_exit_of_its_failed_pod():
    f = finding(run(objects("workload-job-failed")), "migrate")
    [exit_line] = texts(f, "related-object")
    assert re.fullmatch(r'Pod/migrate-\w+: container migrate exited with code 2 \(Error\): '
                        r'relation "orders" does not exist', exit_line)


def test_a_completed_job_and_a_running_job_within_its_limits_report_nothing():
    healthy = objects("workload-healthy")
    assert named(healthy, "jobs", "migrate")["status"]["succeeded"] == 1
    assert run_analyzers([JobAnalyzer()], healthy) == []
    running = objects("workload-job-failed")
    job = named(running, "jobs", "backoff")  # edited: caught before its second failure
    job["status"].update(conditions=[], active=1, failed=1)
    assert [f.name for f in run_analyzers([JobAnalyzer()], running)] == ["deadline", "migrate"]


# CronJob


def test_a_cronjob_whose_last_job_failed_is_an_error_citing_the_job():
    found = run(objects("workload-cronjob"))
    f = finding(found, "nightly", containing="last Job")
    assert (f.kind, f.severity) == ("CronJob", "error")
    assert re.fullmatch(r"its last Job nightly-\d+ failed \(BackoffLimitExceeded\)", f.problem)
    assert any(t.endswith(": status.conditions[Failed]: True (BackoffLimitExceeded): Job has reached the "
                          "specified backoff limit") for t in texts(f, "related-object"))
    assert any(t.startswith("status.lastScheduleTime: ") for t in texts(f, "status"))
    [job] = [x for x in found if x.kind == "Job"]
    assert job.failing  # the Job says it too, with its own evidence


def test_a_suspended_cronjob_is_info():
    f = finding(run(objects("workload-cronjob")), "reports")
    assert (f.severity, f.problem) == ("info", "it is suspended: no Job is scheduled until spec.suspend is false")
    assert texts(f) == ["spec.suspend: true"]


def test_a_failed_run_followed_by_a_completed_one_is_history():
    """Edited: a newer Job of the same CronJob that completed (the healthy fixture's Job, re-parented)."""
    state = objects("workload-cronjob")
    [failed] = state["jobs"]
    newer = copy.deepcopy(named(objects("workload-healthy"), "jobs", "migrate"))
    newer["metadata"].update(name="nightly-99999999", uid="newer", creationTimestamp="2099-01-01T00:00:00Z",
                             ownerReferences=failed["metadata"]["ownerReferences"])
    state["jobs"].append(newer)
    assert [(f.kind, f.name) for f in run(state)] == [("CronJob", "reports")]


def test_a_cronjob_never_scheduled_a_day_after_its_creation_is_a_warning():
    """Edited: the bed cannot wait a day, so the recorded `reports` is un-suspended and made 30 hours old."""
    state = objects("workload-cronjob")
    reports = named(state, "cronjobs", "reports")
    reports["spec"]["suspend"] = False
    assert run_analyzers([CronJobAnalyzer()], state)[0].name == "nightly"  # an hour old: nothing yet
    backdate(reports, "metadata.creationTimestamp", by_hours=30)
    f = finding(run_analyzers([CronJobAnalyzer()], state), "reports")
    assert (f.severity, f.problem) == ("warning", "it has never been scheduled, 30 hours after it was created")
    assert "spec.schedule: 0 6 * * 1" in texts(f) and "status.lastScheduleTime: not set" in texts(f)


def test_an_invalid_schedule_is_an_error():
    """Edited: the API server rejects an invalid schedule on create; objects from older servers carry one."""
    state = objects("workload-cronjob")
    named(state, "cronjobs", "reports")["spec"].update(schedule="0 25 * * *", suspend=False)
    f = finding(run(state), "reports")
    assert f.severity == "error"
    assert f.problem == ("its schedule '0 25 * * *' is not a valid cron schedule (hour '25': 25 is outside 0-23): "
                         "no Job will ever be created")


@pytest.mark.parametrize("schedule", ["* * * * *", "*/5 0-6,22 1 jan-mar MON-fri", "@hourly", "@every 1h30m",
                                      "CRON_TZ=UTC 0 6 * * 1", "0 0 ? * sun", "15/10 * * * *"])
def test_schedules_the_controller_accepts_are_valid(schedule):
    assert schedule_error(schedule) is None


@pytest.mark.parametrize(("schedule", "why"), [
    ("* * * *", "expected exactly 5 fields, found 4"),
    ("60 * * * *", "minute '60': 60 is outside 0-59"),
    ("* * * * 7", "day of week '7': 7 is outside 0-6"),
    ("*/0 * * * *", "minute '*/0': step '0' is not a positive number"),
    ("5-1 * * * *", "minute '5-1': range 5-1 runs backwards"),
    ("@fortnightly", "unrecognized descriptor @fortnightly"),
    ("0 6 * foo *", "month 'foo': 'foo' is not a number"),
])
def test_invalid_schedules_say_which_field_is_wrong(schedule, why):
    assert schedule_error(schedule) == why


# HorizontalPodAutoscaler


def test_an_autoscaler_whose_target_does_not_exist_is_an_error():
    f = finding(run(objects("workload-hpa")), "ghost")
    assert (f.kind, f.severity, f.problem) == ("HorizontalPodAutoscaler", "error",
                                               "its scale target Deployment/gone does not exist")
    assert 'status.conditions[AbleToScale]: False (FailedGetScale): the HPA controller was unable to get the ' \
        'target\'s current scale: deployments.apps "gone" not found' in texts(f)
    assert 'Warning FailedGetScale (x2): deployments.apps "gone" not found' in texts(f, "event")


def test_a_scale_target_of_a_kind_that_could_not_be_read_is_not_called_missing():
    state = objects("workload-hpa")
    del state["deployments"]
    ghost = finding(run(state), "ghost")  # the controller's own condition still stands, in its words
    assert ghost.problem == ("it cannot scale its target (FailedGetScale): the HPA controller was unable to get "
                             'the target\'s current scale: deployments.apps "gone" not found')
    assert not any("not found in namespace" in t for t in texts(ghost))


def test_utilization_of_containers_that_request_nothing_cannot_be_computed():
    f = finding(run(objects("workload-hpa")), "worker")
    assert f.severity == "error"
    assert f.problem == "it cannot compute cpu utilization: container app of Deployment/worker requests no cpu"
    assert "Deployment/worker: spec.template.spec.containers[app].resources.requests.cpu: not set" in texts(f)
    assert any(t.startswith("status.conditions[ScalingActive]: False (FailedGetResourceMetric):")
               and "missing request for cpu in container app" in t for t in texts(f))


def test_an_autoscaler_just_at_its_maximum_is_not_reported_but_held_there_for_long_is():
    """The bed's `api` hit its maximum seconds before the recording; edited: the condition is 30 minutes old."""
    state = objects("workload-hpa")
    assert not [f for f in run(state) if f.name == "api"]
    hpa = named(state, "horizontalpodautoscalers", "api")
    limited = next(c for c in hpa["status"]["conditions"] if c["type"] == "ScalingLimited")
    assert limited["reason"] == "TooManyReplicas"
    backdate(limited, "lastTransitionTime", by_hours=0.5)
    f = finding(run(state), "api")
    assert f.severity == "warning"
    assert re.fullmatch(r"it has been held at its maximum of 2 replicas for 3\d minutes and wants more", f.problem)
    assert "status.conditions[ScalingLimited]: True (TooManyReplicas): the desired replica count is more than " \
        "the maximum replica count" in texts(f)
    assert "status.currentMetrics[cpu].current.averageUtilization: 501" in texts(f)


def test_an_autoscaler_without_metrics_is_a_warning_and_one_scaled_to_zero_is_not_reported():
    """Edited: the healthy autoscaler with the condition the controller writes before metrics arrive."""
    state = objects("workload-healthy")
    hpa = named(state, "horizontalpodautoscalers", "api")
    active = next(c for c in hpa["status"]["conditions"] if c["type"] == "ScalingActive")
    active.update(status="False", reason="FailedGetResourceMetric", message="the HPA was unable to compute the "
                  "replica count: failed to get cpu utilization: unable to get metrics for resource cpu")
    [f] = run(state)
    assert (f.severity, f.problem) == ("warning", "it is not autoscaling (FailedGetResourceMetric): the HPA was "
                                       "unable to compute the replica count: failed to get cpu utilization: "
                                       "unable to get metrics for resource cpu")
    active.update(reason="ScalingDisabled", message="scaling is disabled since the replica count of the target "
                  "is zero")
    assert run(state) == []


# PodDisruptionBudget


def test_a_budget_that_allows_no_disruption_with_every_pod_healthy_is_a_warning():
    f = finding(run(objects("workload-pdb")), "ledger")
    assert f.severity == "warning"
    assert f.problem.startswith("it allows no voluntary disruption even with all 2 pods healthy")
    assert texts(f) == ["spec.maxUnavailable: 0", "status.expectedPods: 2", "status.currentHealthy: 2",
                        "status.desiredHealthy: 2", "status.disruptionsAllowed: 0"]


def test_a_budget_selecting_no_pods_is_a_warning():
    f = finding(run(objects("workload-pdb")), "search")
    assert (f.severity, f.problem) == ("warning", "it selects no pods: it protects nothing")
    assert texts(f) == ['spec.selector: {"matchLabels":{"app":"search"}}', "status.expectedPods: 0",
                        "Normal NoPods (x2): No matching pods found"]


def test_a_budget_with_too_few_healthy_pods_cites_the_condition_and_its_pods():
    f = finding(run(objects("workload-pdb")), "api")
    assert f.problem == "only 0 of the 1 healthy pods it requires: no disruption is allowed"
    assert "status.conditions[DisruptionAllowed]: False (InsufficientPods)" in texts(f)
    cited = texts(f, "related-object")
    assert len(cited) == 2 and all(t.startswith("Pod/api-") and "crash-looping" in t for t in cited)


def test_a_budget_that_allows_a_disruption_or_is_not_yet_judged_is_not_reported():
    state = objects("workload-pdb")
    assert "web" not in {f.name for f in run(state)}
    for pdb in state["poddisruptionbudgets"]:
        pdb["metadata"]["generation"] = 2  # a spec change the controller has not seen
    assert run(state) == []


def test_label_selectors_match_like_the_api_server():
    labels = {"app": "web", "tier": "front"}
    assert selects({}, labels)
    assert selects({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["front", "edge"]},
        {"key": "canary", "operator": "DoesNotExist"}]}, labels)
    assert not selects({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["front"]}]}, labels)
    assert not selects({"matchExpressions": [{"key": "canary", "operator": "Exists"}]}, labels)


# All of them


def test_a_healthy_namespace_of_every_workload_kind_reports_nothing():
    healthy = objects("workload-healthy")
    assert {r for r, items in healthy.items() if items} >= {
        "deployments", "statefulsets", "daemonsets", "jobs", "cronjobs", "horizontalpodautoscalers",
        "poddisruptionbudgets", "services"}
    assert run_analyzers([*CORE, *WORKLOADS], healthy) == []


@pytest.mark.parametrize("scenario", WORKLOAD_SCENARIOS)
def test_every_workload_evidence_line_was_read_not_invented(scenario):
    """A status/spec line quotes a value of the objects; an event line ends with an event's message; a
    related-object line names an object read (or one said to be missing)."""
    state = objects(scenario)
    blob = json.dumps(state)
    messages = {e["message"] for e in state["events"]}
    names = {o["metadata"]["name"] for items in state.values() for o in items}
    for f in run(state):
        for e in f.evidence:
            if e.source in ("status", "spec"):
                value = e.text.split(": ", 1)[1]
                pieces = [p.strip(" ()") for p in re.split(r"\): | \(|: ", value) if p.strip(" ()")]
                assert value in ("not set", "0") or all(p in blob or json.dumps(p)[1:-1] in blob for p in pieces), e
            elif e.source == "event":
                assert any(e.text.endswith(m) for m in messages), e
            else:
                kind_name = e.text.split(": ", 1)[0]
                assert kind_name.split("/", 1)[1] in names or e.text.endswith(("not found", "not set")) \
                    or "not found in namespace" in e.text, e


def test_workload_analyzers_change_nothing_and_say_what_they_read():
    state = objects("workload-pdb")
    before = copy.deepcopy(state)
    assert run(state) == run(state) and state == before
    assert {a.name for a in WORKLOADS} == {"replicaset", "statefulset", "daemonset", "job", "cronjob", "hpa", "pdb"}
    assert not any(a.cluster_scoped for a in WORKLOADS)
    assert set(resources_read(WORKLOADS)) == {
        "replicasets", "pods", "events", "statefulsets", "services", "persistentvolumeclaims", "storageclasses",
        "daemonsets", "jobs", "cronjobs", "horizontalpodautoscalers", "deployments", "poddisruptionbudgets"}
