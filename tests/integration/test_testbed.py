"""The test bed behaves like a cluster: rollouts, server-side validation, kubectl verbs,
the KWOK failure switches (testbed/kwok/pod-failures.yaml) and resource usage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:  # tests/integration is not a package; conftest is pytest's to import
    from conftest import TestBed

T = TypeVar("T")

FAIL_LABEL = "testbed.operate-mcp.dev/fail"
USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 30, interval: float = 0.3) -> T:
    """Poll probe() until it returns something other than None/False; fail after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = probe()
        except AssertionError as exc:  # a probe may assert; keep polling until the deadline
            result, last = None, exc
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def get_json(bed: TestBed, *args: str) -> dict[str, Any]:
    return json.loads(bed.kubectl_run("get", *args, "-o", "json").stdout)


def deployment_manifest(name: str, replicas: int, image: str, labels: dict[str, str] | None = None) -> str:
    pod_labels = {"app": name, **(labels or {})}
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": pod_labels},
                    "spec": {"containers": [{"name": name, "image": image}]},
                },
            },
        }
    )


def pod_manifest(name: str, labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "app", "image": "registry.example/app:1.0"}]},
        }
    )


def condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in obj["status"].get("conditions", []) if c["type"] == kind), {})


def container_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod["status"].get("containerStatuses") or [{}]
    return statuses[0]


def events_for(bed: TestBed, namespace: str, pod: str) -> list[dict[str, Any]]:
    items = get_json(bed, "-n", namespace, "events", "--field-selector", f"involvedObject.name={pod}")["items"]
    return list(items)


def has_event(bed: TestBed, namespace: str, pod: str, reason: str, type_: str, contains: str = "") -> bool:
    return any(
        e["reason"] == reason and e["type"] == type_ and contains in e.get("message", "")
        for e in events_for(bed, namespace, pod)
    )


def rollout_status(bed: TestBed, namespace: str, name: str, timeout: str = "60s") -> None:
    bed.kubectl_run("-n", namespace, "rollout", "status", f"deployment/{name}", f"--timeout={timeout}", timeout=90)


# --- the bed itself -------------------------------------------------------------------


def test_fake_nodes_are_ready(testbed: TestBed) -> None:
    nodes = get_json(testbed, "nodes")["items"]
    ready = [n for n in nodes if condition(n, "Ready").get("status") == "True"]
    assert ready, f"no Ready node among {[n['metadata']['name'] for n in nodes]}"
    if testbed.bin_dir is not None:  # our bed: KWOK nodes with allocatable resources
        kwok = [n for n in ready if n["metadata"].get("annotations", {}).get("kwok.x-k8s.io/node") == "fake"]
        assert kwok
        assert all(int(n["status"]["allocatable"]["pods"]) > 0 for n in kwok)
        version = json.loads(testbed.kubectl_run("version", "-o", "json").stdout)["serverVersion"]["gitVersion"]
        assert version.startswith("v1.")


# --- Deployments and kubectl verbs ------------------------------------------------------


def test_deployment_rolls_out_on_kwok_nodes(testbed: TestBed, namespace: str) -> None:
    testbed.kubectl_run("-n", namespace, "apply", "-f", "-", stdin=deployment_manifest("web", 3, "nginx:1.27"))
    rollout_status(testbed, namespace, "web")

    deployment = get_json(testbed, "-n", namespace, "deployment", "web")
    assert deployment["status"]["readyReplicas"] == 3
    assert deployment["status"]["updatedReplicas"] == 3

    pods = get_json(testbed, "-n", namespace, "pods", "-l", "app=web")["items"]
    assert len(pods) == 3
    assert testbed.kubectl_run("-n", namespace, "logs", "deployment/web").stdout.strip()
    nodes = {n["metadata"]["name"]: n for n in get_json(testbed, "nodes")["items"]}
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready")["status"] == "True"
        assert container_status(pod)["ready"] is True
        assert "running" in container_status(pod)["state"]
        assert pod["status"]["podIP"]
        node = nodes[pod["spec"]["nodeName"]]
        if testbed.bin_dir is not None:
            assert node["metadata"]["annotations"]["kwok.x-k8s.io/node"] == "fake"


def test_server_side_dry_run_returns_validation_error(testbed: TestBed, namespace: str) -> None:
    invalid = deployment_manifest("bad", -1, "nginx:1.27")
    proc = testbed.kubectl_run("-n", namespace, "apply", "--dry-run=server", "-f", "-", stdin=invalid, check=False)
    assert proc.returncode != 0
    assert 'The Deployment "bad" is invalid' in proc.stderr
    assert "spec.replicas: Invalid value: -1: must be greater than or equal to 0" in proc.stderr

    # A valid manifest passes the dry run and still creates nothing.
    valid = deployment_manifest("good", 1, "nginx:1.27")
    proc = testbed.kubectl_run("-n", namespace, "apply", "--dry-run=server", "-f", "-", stdin=valid)
    assert "(server dry run)" in proc.stdout
    listed = testbed.kubectl_run("-n", namespace, "get", "deployments", "-o", "name").stdout
    assert listed.strip() == ""


def test_scale_set_image_and_rollout_undo(testbed: TestBed, namespace: str) -> None:
    testbed.kubectl_run("-n", namespace, "apply", "-f", "-", stdin=deployment_manifest("api", 2, "nginx:1.27"))
    rollout_status(testbed, namespace, "api")

    testbed.kubectl_run("-n", namespace, "scale", "deployment/api", "--replicas=4")
    rollout_status(testbed, namespace, "api")
    deployment = get_json(testbed, "-n", namespace, "deployment", "api")
    assert deployment["spec"]["replicas"] == 4
    assert deployment["status"]["readyReplicas"] == 4

    testbed.kubectl_run("-n", namespace, "set", "image", "deployment/api", "api=nginx:1.28")
    rollout_status(testbed, namespace, "api")
    deployment = get_json(testbed, "-n", namespace, "deployment", "api")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    def new_pods_only() -> bool:
        pods = get_json(testbed, "-n", namespace, "pods", "-l", "app=api")["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 4 and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in live)

    wait_until("only nginx:1.28 pods", new_pods_only)

    testbed.kubectl_run("-n", namespace, "rollout", "undo", "deployment/api")
    rollout_status(testbed, namespace, "api")
    deployment = get_json(testbed, "-n", namespace, "deployment", "api")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert deployment["spec"]["replicas"] == 4
    assert deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


# --- failure switches and usage -----------------------------------------------------------
# One namespace with all scenario pods, created once so they progress in parallel.

SCENARIOS = ("crashloop", "oomkilled", "imagepull", "unready")


@pytest.fixture(scope="module")
def kwok(testbed: TestBed) -> None:
    """The failure switches and fake usage need KWOK. The project's bed always has it;
    an opted-in existing cluster (kind, ...) may not, and then these tests say so."""
    if testbed.bin_dir is None and not get_json(testbed, "nodes", "-l", "type=kwok")["items"]:
        pytest.skip("existing cluster without KWOK nodes: failure switches and fake usage need KWOK")


@pytest.fixture(scope="module")
def scenario_namespace(testbed: TestBed, kwok: None) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    testbed.kubectl_run("create", "namespace", name)
    try:
        wait_until(
            "the default ServiceAccount",
            lambda: testbed.kubectl_run("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
        )
        for scenario in SCENARIOS:
            manifest = pod_manifest(scenario, labels={FAIL_LABEL: scenario})
            testbed.kubectl_run("-n", name, "apply", "-f", "-", stdin=manifest)
        usage = pod_manifest("busy", annotations={USAGE_CPU: "250m", USAGE_MEMORY: "300Mi"})
        testbed.kubectl_run("-n", name, "apply", "-f", "-", stdin=usage)
        yield name
    finally:
        testbed.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def get_pod(bed: TestBed, namespace: str, name: str) -> dict[str, Any]:
    return get_json(bed, "-n", namespace, "pod", name)


def test_crashloop_switch(testbed: TestBed, scenario_namespace: str) -> None:
    ns = scenario_namespace

    def in_backoff() -> dict[str, Any] | None:
        cs = container_status(get_pod(testbed, ns, "crashloop"))
        if cs.get("state", {}).get("waiting", {}).get("reason") == "CrashLoopBackOff" and cs["restartCount"] >= 1:
            return cs
        return None

    first = wait_until("CrashLoopBackOff", in_backoff)
    assert first["lastState"]["terminated"]["exitCode"] == 1
    assert first["lastState"]["terminated"]["reason"] == "Error"
    assert first["ready"] is False
    pod = get_pod(testbed, ns, "crashloop")
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["status"] == "False"

    restarts = first["restartCount"]
    wait_until(
        f"restartCount to climb past {restarts}",
        lambda: container_status(get_pod(testbed, ns, "crashloop"))["restartCount"] > restarts,
    )
    wait_until("a BackOff event", lambda: has_event(testbed, ns, "crashloop", "BackOff", "Warning", "restarting"))
    # kwok serves logs (testbed/kwok/logs.yaml): the previous container's shows the crash.
    previous = testbed.kubectl_run("-n", ns, "logs", "crashloop", "--previous").stdout
    assert "panic:" in previous


def test_oomkilled_switch(testbed: TestBed, scenario_namespace: str) -> None:
    ns = scenario_namespace

    def oom_killed() -> dict[str, Any] | None:
        cs = container_status(get_pod(testbed, ns, "oomkilled"))
        terminated = cs.get("lastState", {}).get("terminated") or cs.get("state", {}).get("terminated")
        return terminated if terminated and terminated.get("reason") == "OOMKilled" else None

    terminated = wait_until("an OOMKilled termination", oom_killed)
    assert terminated["exitCode"] == 137
    wait_until("a BackOff event", lambda: has_event(testbed, ns, "oomkilled", "BackOff", "Warning"))


def test_imagepull_switch(testbed: TestBed, scenario_namespace: str) -> None:
    ns = scenario_namespace

    def pull_backoff() -> dict[str, Any] | None:
        pod = get_pod(testbed, ns, "imagepull")
        waiting = container_status(pod).get("state", {}).get("waiting", {})
        return pod if waiting.get("reason") == "ImagePullBackOff" else None

    pod = wait_until("ImagePullBackOff", pull_backoff)
    assert pod["status"]["phase"] == "Pending"
    waiting = container_status(pod)["state"]["waiting"]
    assert "registry.example/app:1.0" in waiting["message"]
    assert has_event(testbed, ns, "imagepull", "Failed", "Warning", "ErrImagePull")
    assert has_event(testbed, ns, "imagepull", "Failed", "Warning", "ImagePullBackOff")
    assert has_event(testbed, ns, "imagepull", "BackOff", "Normal", "Back-off pulling image")


def test_unready_switch(testbed: TestBed, scenario_namespace: str) -> None:
    ns = scenario_namespace
    wait_until(
        "an Unhealthy event",
        lambda: has_event(testbed, ns, "unready", "Unhealthy", "Warning", "Readiness probe failed"),
    )
    for _ in range(2):  # running, and still not ready a moment later
        pod = get_pod(testbed, ns, "unready")
        assert pod["status"]["phase"] == "Running"
        cs = container_status(pod)
        assert "running" in cs["state"]
        assert cs["ready"] is False
        assert cs["restartCount"] == 0
        assert condition(pod, "Ready")["status"] == "False"
        time.sleep(1)


def test_unready_deployment_never_completes_rollout(testbed: TestBed, kwok: None, namespace: str) -> None:
    manifest = deployment_manifest("stuck", 1, "nginx:1.27", {FAIL_LABEL: "unready"})
    testbed.kubectl_run("-n", namespace, "apply", "-f", "-", stdin=manifest)
    proc = testbed.kubectl_run(
        "-n", namespace, "rollout", "status", "deployment/stuck", "--timeout=4s", check=False, timeout=30
    )
    assert proc.returncode != 0
    assert "timed out" in proc.stderr


def parse_cpu(value: str) -> float:
    """Cores from a CPU quantity as the metrics API prints it (``250m``, ``249876543n``, ``1``)."""
    for suffix, scale in (("n", 1e-9), ("u", 1e-6), ("m", 1e-3)):
        if value.endswith(suffix):
            return float(value[: -len(suffix)]) * scale
    return float(value)


def parse_memory(value: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    for suffix, scale in units.items():
        if value.endswith(suffix):
            return int(float(value[: -len(suffix)]) * scale)
    return int(value)


def test_pod_usage_can_be_read(testbed: TestBed, scenario_namespace: str) -> None:
    """The annotated pod's usage comes back from the metrics API (metrics-server) and kubectl top."""
    ns = scenario_namespace

    def pod_metrics() -> dict[str, Any] | None:
        proc = testbed.kubectl_run(
            "get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods/busy", check=False
        )
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    metrics = wait_until("pod metrics from metrics.k8s.io", pod_metrics, timeout=90, interval=2)
    usage = metrics["containers"][0]["usage"]
    assert parse_cpu(usage["cpu"]) == pytest.approx(0.25, rel=0.1)
    assert parse_memory(usage["memory"]) == 300 * 2**20

    top = testbed.kubectl_run("-n", ns, "top", "pod", "busy", "--no-headers").stdout.split()
    assert top[0] == "busy"
    assert parse_cpu(top[1]) == pytest.approx(0.25, rel=0.1)
    assert top[2] == "300Mi"
