"""`diagnose` on the real control plane, one broken thing per namespace: each failure is found on the right
object, with the right severity and problem, citing the exact event, status, spec, log and related-object
lines that prove it; a healthy namespace of many pods says nothing at all.

Pod failures are the bed's failure switches (docs/testbed.md); Services, scheduling and storage are the
real API server, scheduler and controllers. Each test polls `diagnose` until the state has appeared.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import pytest

from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.finding import Finding
from operate_mcp.redact import redact_plain
from operate_mcp.workflows.diagnose import Diagnosis, diagnose
from support.manifests import bed_settings
from support.scenarios import (
    configmap_volume,
    container,
    deployment,
    healthy_namespace,
    http_probe,
    manifest,
    pvc,
    secret,
    secret_env,
    service,
)

T = TypeVar("T")
TIMEOUT = 90.0  # the slowest state (a liveness kill) appears after 5-13 s; a loaded shared bed is slower
POLL = 0.5
TIMES = r"(once|\d+ times)"  # how often a container has restarted, as a problem says it


@dataclass
class Scenario:
    """One namespace on the bed: apply objects, then poll `diagnose` until a check holds."""

    testbed: Any
    namespace: str
    kubectl: Kubectl

    def apply(self, *objects: dict[str, Any]) -> None:
        self.testbed.kubectl_run("apply", "-f", "-", stdin=manifest(*objects))

    def diagnose(self) -> Diagnosis:
        return diagnose(reader_for(self.kubectl), namespace=self.namespace)

    def until(self, check: Callable[[Diagnosis], T], timeout: float = TIMEOUT) -> T:
        """`check`'s result once it stops failing; at the deadline its assertion, with the last diagnosis."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.diagnose()
            try:
                return check(found)
            except AssertionError as exc:
                if time.monotonic() >= deadline:
                    raise AssertionError(
                        f"{exc}\n\nlast diagnosis of {self.namespace} after {timeout:.0f}s:\n"
                        f"{found.model_dump_json(indent=1)}"
                    ) from exc
            time.sleep(POLL)


@pytest.fixture
def scenario(testbed: Any, namespace: str, tmp_path: Any) -> Scenario:
    return Scenario(testbed, namespace, Kubectl(bed_settings(testbed, tmp_path)))


def only(found: Diagnosis, kind: str) -> Finding:
    """The one finding about an object of `kind`."""
    matching = [f for f in found.findings if f.kind == kind]
    assert len(matching) == 1, f"expected one {kind} finding, got {[f.problem for f in matching]}"
    return matching[0]


def lines(f: Finding, source: str) -> list[str]:
    return [e.text for e in f.evidence if e.source == source]


def cited(f: Finding, source: str, pattern: str) -> str:
    """The evidence line of `source` that matches `pattern` (a regular expression over the whole line)."""
    hits = [t for t in lines(f, source) if re.fullmatch(pattern, t)]
    assert hits, f"no {source} line matching {pattern!r} in {lines(f, source)}"
    return hits[0]


def as_read(message: str) -> list[str]:
    """A message as the analyzers may see it: the reader masks what looks like a credential in messages, and
    containerd's "may require authorization: server message" looks like an Authorization header to it."""
    return list(dict.fromkeys([message, redact_plain(message)]))


def event(kind: str, reason: str, message: str) -> str:
    """An event line as the analyzers print it (`Warning Failed (x3): ...`), any count, exact message."""
    return rf"{kind} {reason}( \(x\d+\))?: {re.escape(message)}"


# ---------------------------------------------------------------- pods


def test_a_bad_image_tag_is_an_image_pull_error_citing_the_registrys_answer(scenario: Scenario) -> None:
    image = "registry.example/shop/api:9.9.9-no-such-tag"
    scenario.apply(deployment("api", scenario.namespace, [container("api", image)], fail="imagepull"))

    def check(found: Diagnosis) -> tuple[Finding, Finding]:
        pod = only(found, "Pod")
        reason = cited(pod, "status", r"status\.containerStatuses\[api\]\.state\.waiting\.reason: (\w+)").split()[-1]
        assert pod.problem == f"container api cannot pull image {image}: {reason}"
        cited(pod, "event", event("Warning", "Failed", f"Error: {reason}"))
        return pod, only(found, "Deployment")

    pod, owner = scenario.until(check)
    assert pod.severity == "error"
    assert f"spec.containers[api].image: {image}" in lines(pod, "spec")
    cited(
        pod,
        "event",
        event(
            "Warning",
            "Failed",
            "Failed to pull image: rpc error: code = NotFound desc = failed to pull and unpack image: not found",
        ),
    )
    waiting = cited(pod, "status", r"status\.containerStatuses\[api\]\.state\.waiting\.message: .*")
    assert waiting.split(": ", 1)[1] in (
        f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to resolve reference '
        f'"{image}": not found',
        f'Back-off pulling image "{image}"',
    )
    assert "imagePullSecrets" not in pod.problem  # the tag does not exist: credentials would not help
    assert owner.name == "api" and owner.problem == "0 of 1 replicas available"
    assert any(t.startswith(f"Pod/{pod.name}: container api cannot pull image") for t in lines(owner, "related-object"))


def test_a_private_image_without_a_pull_secret_says_the_pod_has_no_image_pull_secrets(scenario: Scenario) -> None:
    scenario.apply(
        deployment("api", scenario.namespace, [container("api", "acme/private-api:2.1")], fail="imagepull-auth")
    )
    denied = (
        'failed to pull and unpack image "docker.io/acme/private-api:2.1": failed to resolve reference '
        '"docker.io/acme/private-api:2.1": pull access denied, repository does not exist or may require '
        "authorization: server message: insufficient_scope: authorization failed"
    )

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        assert re.fullmatch(
            r"container api cannot pull image acme/private-api:2\.1: (ErrImagePull|ImagePullBackOff); "
            r"the registry denied access and the pod has no imagePullSecrets",
            pod.problem,
        ), pod.problem
        failed = [
            event("Warning", "Failed", f'Failed to pull image "acme/private-api:2.1": {m}') for m in as_read(denied)
        ]
        cited(pod, "event", "|".join(f"({e})" for e in failed))
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert lines(pod, "spec") == ["spec.containers[api].image: acme/private-api:2.1", "spec.imagePullSecrets: none"]
    message = cited(pod, "status", r"status\.containerStatuses\[api\]\.state\.waiting\.message: .*")
    assert message.endswith(tuple(as_read(denied)))


def test_a_command_missing_from_the_image_is_a_start_error_quoting_runc(scenario: Scenario) -> None:
    runc = (
        "failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create "
        "failed: unable to start container process: error during container init: "
        'exec: "gunicorn": executable file not found in $PATH: unknown'
    )
    app = container("app-no-output", "python:3.12-slim", command=["gunicorn", "app:wsgi"])
    scenario.apply(deployment("api", scenario.namespace, [app], fail="badcommand"))

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        cited(pod, "event", event("Warning", "Failed", f"Error: {runc}"))
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(
        r'container app-no-output cannot start its command: exec: "gunicorn": executable file not found in \$PATH '
        rf"\(exit code 128, StartError\); it has restarted {TIMES}",
        pod.problem,
    ), pod.problem
    terminated = r"status\.containerStatuses\[app-no-output\]\.(state|lastState)\.terminated"
    cited(pod, "status", rf"{terminated}\.reason: StartError")
    cited(pod, "status", rf"{terminated}\.exitCode: 128")
    cited(pod, "status", rf"{terminated}\.message: {re.escape(runc)}")
    assert 'spec.containers[app-no-output].command: ["gunicorn","app:wsgi"]' in lines(pod, "spec")
    assert lines(pod, "log") == []  # it never ran: nothing to read


def test_a_crash_from_a_missing_env_var_cites_the_traceback_of_the_previous_run(scenario: Scenario) -> None:
    scenario.apply(deployment("api", scenario.namespace, [container("app-missing-env")], fail="crashloop"))

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        assert "KeyError: 'DATABASE_URL'" in lines(pod, "log")
        cited(pod, "event", event("Warning", "BackOff", "Back-off restarting failed container"))
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(
        rf"container app-missing-env is crash-looping: it exited with code 1 \(Error\) and has restarted {TIMES}",
        pod.problem,
    ), pod.problem
    cited(pod, "status", r"status\.containerStatuses\[app-missing-env\]\.(state|lastState)\.terminated\.exitCode: 1")
    log = lines(pod, "log")
    assert log[0] == "Traceback (most recent call last):" and log[-1] == "KeyError: 'DATABASE_URL'"


def test_an_oom_killed_container_is_reported_with_its_memory_limit(scenario: Scenario) -> None:
    resources = {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}
    scenario.apply(deployment("api", scenario.namespace, [container("api", resources=resources)], fail="oomkilled"))

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        assert "OOMKilled" in pod.problem
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(
        rf"container api was OOMKilled \(exit code 137\) and has restarted {TIMES}; its memory limit is 64Mi",
        pod.problem,
    ), pod.problem
    cited(pod, "status", r"status\.containerStatuses\[api\]\.(state|lastState)\.terminated\.reason: OOMKilled")
    cited(pod, "status", r"status\.containerStatuses\[api\]\.(state|lastState)\.terminated\.exitCode: 137")
    assert "spec.containers[api].resources.limits.memory: 64Mi" in lines(pod, "spec")


def test_a_missing_configmap_volume_fails_to_mount_and_the_configmap_is_not_found(scenario: Scenario) -> None:
    ns = scenario.namespace
    app = container("api", volumeMounts=[{"name": "config", "mountPath": "/etc/api"}])
    scenario.apply(deployment("api", ns, [app], fail="mountfail", volumes=[configmap_volume("config", "api-config")]))
    mount = 'MountVolume.SetUp failed for volume "config" : configmap "api-config" not found'

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        cited(pod, "event", event("Warning", "FailedMount", mount))
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert (
        pod.problem == "container api cannot start: its volumes cannot be mounted; ConfigMap api-config does not exist"
    )
    assert "status.containerStatuses[api].state.waiting.reason: ContainerCreating" in lines(pod, "status")
    assert lines(pod, "spec") == ["spec.volumes[config].configMap.name: api-config"]
    assert lines(pod, "related-object") == [f"ConfigMap/api-config: not found in namespace {ns}"]


def test_a_missing_secret_key_names_the_key_and_the_secret_that_exists_without_reading_it(
    scenario: Scenario,
) -> None:
    ns = scenario.namespace
    app = container("api", env=[secret_env("DB_PASSWORD", "db-credentials", "password")])
    scenario.apply(
        secret("db-credentials", ns, {"username": "svc-shop-4f1c9a"}),
        deployment("api", ns, [app], fail="configerror"),
    )
    message = f"couldn't find key password in Secret {ns}/db-credentials"

    def check(found: Diagnosis) -> tuple[Diagnosis, Finding]:
        pod = only(found, "Pod")
        cited(pod, "event", event("Warning", "Failed", f"Error: {message}"))
        return found, pod

    found, pod = scenario.until(check)
    assert pod.severity == "error"
    assert pod.problem == f"container api cannot start: {message}"
    assert lines(pod, "status") == [
        "status.containerStatuses[api].state.waiting.reason: CreateContainerConfigError",
        f"status.containerStatuses[api].state.waiting.message: {message}",
    ]
    assert lines(pod, "spec") == [
        'spec.containers[api].env[DB_PASSWORD].valueFrom.secretKeyRef: {"key":"password","name":"db-credentials"}'
    ]
    assert lines(pod, "related-object") == [f"Secret/db-credentials: exists in namespace {ns}"]
    assert "svc-shop-4f1c9a" not in found.model_dump_json()  # Secrets are known by name, never read


def test_a_failing_readiness_probe_keeps_the_pod_out_of_service(scenario: Scenario) -> None:
    scenario.apply(
        deployment("api", scenario.namespace, [container("api", readinessProbe=http_probe())], fail="unready")
    )
    probe = "Readiness probe failed: HTTP probe failed with statuscode: 503"

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        cited(pod, "event", event("Warning", "Unhealthy", probe))
        return pod

    pod = scenario.until(check)
    assert (pod.severity, pod.problem) == ("error", "container api is running but not ready: its readiness probe fails")
    assert lines(pod, "status") == [
        "status.containerStatuses[api].ready: false",
        "status.conditions[Ready]: False (ContainersNotReady): containers with unready status: [api]",
    ]


def test_a_failing_liveness_probe_is_reported_as_restarting_a_ready_container(scenario: Scenario) -> None:
    app = container("app-unhealthy", livenessProbe=http_probe())
    scenario.apply(deployment("api", scenario.namespace, [app], fail="liveness"))

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        assert found.findings == [pod]  # Ready between kills: its Deployment is available
        cited(
            pod, "event", event("Normal", "Killing", "Container app-unhealthy failed liveness probe, will be restarted")
        )
        cited(
            pod, "event", event("Warning", "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500")
        )
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(
        r"container app-unhealthy is restarted by its failing liveness probe: it exited with code 137 \(Error\) "
        rf"and has restarted {TIMES}",
        pod.problem,
    ), pod.problem
    cited(pod, "status", r"status\.containerStatuses\[app-unhealthy\]\.lastState\.terminated\.exitCode: 137")
    # the killed instance's log says why its health check failed (read although the container is Ready now)
    cited(pod, "log", r".*ERROR +GET /healthz 500 [\d.]+ms: health check timed out")
    assert lines(pod, "spec") == [  # the probe as the API server keeps it, defaults filled in
        'spec.containers[app-unhealthy].livenessProbe: {"failureThreshold":3,"httpGet":{"path":"/healthz","port":8080,'
        '"scheme":"HTTP"},"periodSeconds":10,"successThreshold":1,"timeoutSeconds":1}'
    ]


# ---------------------------------------------------------------- services


def web(namespace: str, replicas: int = 2) -> dict[str, Any]:
    """A healthy web tier whose pods declare port 8080 named http."""
    return deployment(
        "web", namespace, [container("web", ports=[{"name": "http", "containerPort": 8080}])], replicas=replicas
    )


def test_a_service_selector_matching_no_pod_has_no_endpoints(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.apply(web(ns), service("web", ns, {"app": "web-v2"}, target="http"))

    def check(found: Diagnosis) -> Finding:
        svc = only(found, "Service")
        assert len(lines(svc, "related-object")) == 2  # both pods exist, labelled otherwise
        return svc

    svc = scenario.until(check)
    assert (svc.name, svc.severity) == ("web", "error")
    assert svc.problem == "no ready endpoints: no pod has the labels app=web-v2"
    assert lines(svc, "spec") == ['spec.selector: {"app":"web-v2"}']
    assert all(re.fullmatch(r"Pod/web-[a-z0-9]+-[a-z0-9]+: labels app=web", t) for t in lines(svc, "related-object"))


def test_a_named_target_port_no_container_has_reaches_no_pod(scenario: Scenario) -> None:
    ns = scenario.namespace
    scenario.apply(web(ns), service("web", ns, {"app": "web"}, target="web-http"))
    scenario.testbed.kubectl_run("rollout", "status", "deployment/web", "-n", ns, "--timeout=60s", timeout=70)

    svc = scenario.until(lambda found: only(found, "Service"))
    assert (svc.name, svc.severity) == ("web", "error")
    assert svc.problem == "port 80 has no endpoints: no container of its pods has a port named web-http"
    assert lines(svc, "spec") == ["spec.ports[http].targetPort: web-http"]
    [pod] = lines(svc, "related-object")
    assert re.fullmatch(r"Pod/web-[a-z0-9]+-[a-z0-9]+: ports web 8080/TCP \(http\)", pod), pod


# ---------------------------------------------------------------- scheduling and storage


def test_requests_no_node_can_hold_are_unschedulable_with_the_schedulers_words(scenario: Scenario) -> None:
    big = container("api", resources={"requests": {"cpu": "64", "memory": "64Mi"}})
    scenario.apply(deployment("api", scenario.namespace, [big]))

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        cited(pod, "event", r"Warning FailedScheduling( \(x\d+\))?: 0/\d+ nodes are available: .*Insufficient cpu.*")
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(r"pod cannot be scheduled: 0/\d+ nodes are available: \d+ Insufficient cpu\..*", pod.problem)
    why = pod.problem.removeprefix("pod cannot be scheduled: ")
    assert lines(pod, "status") == [f"status.conditions[PodScheduled]: False (Unschedulable): {why}"]
    assert lines(pod, "spec") == ["spec.containers[api].resources.requests.cpu: 64"]


def test_a_node_selector_no_node_matches_is_unschedulable_with_the_schedulers_words(scenario: Scenario) -> None:
    scenario.apply(deployment("api", scenario.namespace, nodeSelector={"disk": "nvme-only"}))
    selector = r"\d+ node\(s\) didn't match Pod's node affinity/selector"

    def check(found: Diagnosis) -> Finding:
        pod = only(found, "Pod")
        cited(pod, "event", rf"Warning FailedScheduling( \(x\d+\))?: 0/\d+ nodes are available: {selector}.*")
        return pod

    pod = scenario.until(check)
    assert pod.severity == "error"
    assert re.fullmatch(rf"pod cannot be scheduled: 0/\d+ nodes are available: {selector}\..*", pod.problem)
    why = pod.problem.removeprefix("pod cannot be scheduled: ")
    assert lines(pod, "status") == [f"status.conditions[PodScheduled]: False (Unschedulable): {why}"]
    assert lines(pod, "spec") == ['spec.nodeSelector: {"disk":"nvme-only"}']


def test_a_claim_naming_a_storage_class_that_does_not_exist_stays_pending(scenario: Scenario) -> None:
    ns = scenario.namespace
    missing = f"fast-ssd-{ns}"  # StorageClasses are cluster-wide: a name no other test uses
    scenario.apply(pvc("data", ns, missing))

    def check(found: Diagnosis) -> Finding:
        claim = only(found, "PersistentVolumeClaim")
        cited(
            claim,
            "event",
            event("Warning", "ProvisioningFailed", f'storageclass.storage.k8s.io "{missing}" not found'),
        )
        return claim

    claim = scenario.until(check)
    assert (claim.name, claim.severity) == ("data", "error")
    assert claim.problem == f"Pending: StorageClass {missing} does not exist"
    assert lines(claim, "status") == ["status.phase: Pending"]
    assert lines(claim, "spec") == [f"spec.storageClassName: {missing}"]
    assert lines(claim, "related-object") == [f"StorageClass/{missing}: not found"]
    phase = scenario.testbed.kubectl_run("get", "pvc", "data", "-n", ns, "-o", "jsonpath={.status.phase}")
    assert phase.stdout == "Pending"


# ---------------------------------------------------------------- controls


def run_cli(testbed: Any, tmp_path: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "KUBECONFIG": str(testbed.kubeconfig),
        "OPERATE_MCP_KUBECTL": testbed.kubectl,
        "OPERATE_MCP_DATA_DIR": str(tmp_path / "data"),
    }
    return subprocess.run(
        [sys.executable, "-m", "operate_mcp", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_a_healthy_namespace_of_many_pods_and_a_completed_job_reports_nothing(
    scenario: Scenario, tmp_path: Any
) -> None:
    ns, bed = scenario.namespace, scenario.testbed
    scenario.apply(*healthy_namespace(ns, replicas=30))
    bed.kubectl_run("rollout", "status", "deployment/web", "-n", ns, "--timeout=120s", timeout=130)
    bed.kubectl_run("rollout", "status", "statefulset/db", "-n", ns, "--timeout=120s", timeout=130)
    bed.kubectl_run("wait", "job/migrate", "-n", ns, "--for=condition=Complete", "--timeout=120s", timeout=130)

    def everything_settled(found: Diagnosis) -> Diagnosis:
        pods = json.loads(bed.kubectl_run("get", "pods", "-n", ns, "-o", "json").stdout)["items"]
        phases = sorted({p["status"].get("phase") for p in pods})
        assert len(pods) == 34 and phases == ["Running", "Succeeded"], (len(pods), phases)
        slices = json.loads(
            bed.kubectl_run(
                "get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=web", "-o", "json"
            ).stdout
        )["items"]
        assert sum(len(s.get("endpoints") or ()) for s in slices) == 30
        return found

    found = scenario.until(everything_settled)
    assert found.findings == [], found.model_dump_json(indent=1)
    assert found.not_read == []
    assert {"pod", "deployment", "replicaset", "statefulset", "job", "service", "configmap", "logs"} <= set(
        found.analyzers_run
    )

    proc = run_cli(bed, tmp_path, "diagnose", "-n", ns)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"diagnosis of {ns}: 0 findings"), proc.stdout
    as_json = run_cli(bed, tmp_path, "diagnose", "-n", ns, "--format", "json")
    assert as_json.returncode == 0 and json.loads(as_json.stdout)["findings"] == []
