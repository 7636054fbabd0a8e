"""The test bed's newer failure switches (testbed/kwok/pod-failures.yaml) show what a
v1.34 kubelet with containerd shows: status fields, Events worded from the pod's own
spec, and the scenario logs chosen by container name (testbed/kwok/logs.yaml)."""

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

RUNC_PREFIX = (
    "failed to create containerd task: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: error during container init: "
)
AUTH_FAILURE = (
    "pull access denied, repository does not exist or may require authorization: "
    "server message: insufficient_scope: authorization failed"
)


def container(name: str, image: str = "registry.example/app:1.0", **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": image, **extra}


def secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def configmap_env(name: str, configmap: str, key: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"configMapKeyRef": {"name": configmap, "key": key}}}


# pod name -> (switch, pod spec)
SCENARIOS: dict[str, tuple[str, dict[str, Any]]] = {
    "private-image": ("imagepull-auth", {"containers": [container("app", "acme/private-api:2.1")]}),
    "bad-command": (
        "badcommand",
        {"containers": [container("app-no-output", "busybox:1.36", command=["gunicorn", "app:wsgi"])]},
    ),
    "bad-command-path": ("badcommand", {"containers": [container("app", command=["/app/start.sh"])]}),
    "missing-env": ("crashloop", {"containers": [container("app-missing-env")]}),
    "missing-key": (
        "configerror",
        {
            "containers": [
                container(
                    "app",
                    env=[{"name": "MODE", "value": "prod"}, secret_env("DB_PASSWORD", "db-credentials", "password")],
                )
            ]
        },
    ),
    "missing-configmap-key": (
        "configerror",
        {"containers": [container("app", env=[configmap_env("FLAGS", "app-flags", "flags")])]},
    ),
    "missing-secret": (
        "configerror-missing",
        {"containers": [container("app", env=[secret_env("DB_PASSWORD", "db-credentials", "password")])]},
    ),
    "missing-configmap": (
        "configerror-missing",
        {"containers": [container("app", env=[configmap_env("FLAGS", "app-flags", "flags")])]},
    ),
    "missing-volume": (
        "mountfail",
        {
            "containers": [container("app", volumeMounts=[{"name": "settings", "mountPath": "/etc/app"}])],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "settings", "configMap": {"name": "app-settings"}},
            ],
        },
    ),
    "missing-secret-volume": (
        "mountfail",
        {
            "containers": [container("app", volumeMounts=[{"name": "tls", "mountPath": "/etc/tls"}])],
            "volumes": [{"name": "tls", "secret": {"secretName": "app-tls"}}],
        },
    ),
    "liveness": (
        "liveness",
        {"containers": [container("app-unhealthy", livenessProbe={"httpGet": {"path": "/healthz", "port": 8080}})]},
    ),
}


def wait_until(what: str, probe: Callable[[], T | None], timeout: float = 40, interval: float = 0.3) -> T:
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
    return dict(json.loads(bed.kubectl_run("get", *args, "-o", "json").stdout))


def get_pod(bed: TestBed, namespace: str, name: str) -> dict[str, Any]:
    return get_json(bed, "-n", namespace, "pod", name)


def first_status(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = pod["status"].get("containerStatuses") or [{}]
    return dict(statuses[0])


def condition(pod: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in pod["status"].get("conditions", []) if c["type"] == kind), {})


def find_event(bed: TestBed, namespace: str, pod: str, reason: str, message: str) -> dict[str, Any] | None:
    """The Event about ``pod`` with this reason and exactly this message, if recorded yet."""
    items = get_json(bed, "-n", namespace, "events", "--field-selector", f"involvedObject.name={pod}")["items"]
    return next((e for e in items if e["reason"] == reason and e.get("message") == message), None)


def wait_for_event(
    bed: TestBed, namespace: str, pod: str, reason: str, message: str, min_count: int = 1, timeout: float = 40
) -> dict[str, Any]:
    def recorded() -> dict[str, Any] | None:
        event = find_event(bed, namespace, pod, reason, message)
        return event if event is not None and event.get("count", 1) >= min_count else None

    return wait_until(f"{reason} event {message!r} (count >= {min_count}) on {pod}", recorded, timeout=timeout)


def assert_from_kubelet(event: dict[str, Any], container_name: str | None) -> None:
    assert event["source"]["component"] == "kubelet"
    assert event["involvedObject"]["kind"] == "Pod"
    if container_name is not None:
        assert event["involvedObject"]["fieldPath"] == f"spec.containers{{{container_name}}}"


def waiting(pod: dict[str, Any]) -> dict[str, Any]:
    return dict(first_status(pod).get("state", {}).get("waiting") or {})


def wait_for_waiting(bed: TestBed, namespace: str, name: str, reason: str) -> dict[str, Any]:
    """The pod, once its first container waits with this reason."""

    def in_state() -> dict[str, Any] | None:
        pod = get_pod(bed, namespace, name)
        return pod if waiting(pod).get("reason") == reason else None

    return wait_until(f"{name} waiting with {reason}", in_state)


@pytest.fixture(scope="module")
def kwok(testbed: TestBed) -> None:
    """The switches need KWOK nodes; an opted-in existing cluster may not have them."""
    if testbed.bin_dir is None and not get_json(testbed, "nodes", "-l", "type=kwok")["items"]:
        pytest.skip("existing cluster without KWOK nodes: the failure switches need KWOK")


@pytest.fixture(scope="module")
def switches(testbed: TestBed, kwok: None) -> Iterator[str]:
    """One namespace holding every scenario pod, created up front so they progress in parallel."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    testbed.kubectl_run("create", "namespace", name)
    try:
        wait_until(
            "the default ServiceAccount",
            lambda: testbed.kubectl_run("-n", name, "get", "serviceaccount", "default", check=False).returncode == 0,
        )
        pods = [
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "labels": {FAIL_LABEL: switch}},
                "spec": spec,
            }
            for pod, (switch, spec) in SCENARIOS.items()
        ]
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})
        testbed.kubectl_run("-n", name, "apply", "-f", "-", stdin=manifest)
        yield name
    finally:
        testbed.kubectl_run("delete", "namespace", name, "--wait=false", check=False)


def test_imagepull_auth_reports_containerds_authorization_failure(testbed: TestBed, switches: str) -> None:
    ns, pod_name = switches, "private-image"
    pull_error = (
        'failed to pull and unpack image "docker.io/acme/private-api:2.1": '
        f'failed to resolve reference "docker.io/acme/private-api:2.1": {AUTH_FAILURE}'
    )

    pod = wait_for_waiting(testbed, ns, pod_name, "ImagePullBackOff")
    assert pod["status"]["phase"] == "Pending"
    assert waiting(pod)["message"] == f'Back-off pulling image "acme/private-api:2.1": ErrImagePull: {pull_error}'
    assert first_status(pod)["restartCount"] == 0

    failed = wait_for_event(
        testbed, ns, pod_name, "Failed", f'Failed to pull image "acme/private-api:2.1": {pull_error}'
    )
    assert failed["type"] == "Warning"
    assert_from_kubelet(failed, "app")
    wait_for_event(testbed, ns, pod_name, "Pulling", 'Pulling image "acme/private-api:2.1"')
    wait_for_event(testbed, ns, pod_name, "Failed", "Error: ErrImagePull")
    wait_for_event(testbed, ns, pod_name, "BackOff", 'Back-off pulling image "acme/private-api:2.1"')
    wait_for_event(testbed, ns, pod_name, "Failed", "Error: ImagePullBackOff")
    # The pull is retried: the attempt count grows.
    wait_for_event(testbed, ns, pod_name, "Pulling", 'Pulling image "acme/private-api:2.1"', min_count=2)


def test_badcommand_fails_to_start_and_crash_loops(testbed: TestBed, switches: str) -> None:
    ns, pod_name = switches, "bad-command"
    message = f'{RUNC_PREFIX}exec: "gunicorn": executable file not found in $PATH: unknown'

    def in_backoff() -> dict[str, Any] | None:
        pod = get_pod(testbed, ns, pod_name)
        cs = first_status(pod)
        if waiting(pod).get("reason") == "CrashLoopBackOff" and cs.get("lastState", {}).get("terminated"):
            return pod
        return None

    pod = wait_until("CrashLoopBackOff after a StartError", in_backoff)
    assert pod["status"]["phase"] == "Running"
    cs = first_status(pod)
    terminated = cs["lastState"]["terminated"]
    assert terminated["reason"] == "StartError"
    assert terminated["exitCode"] == 128
    assert terminated["message"] == message
    assert terminated["startedAt"] == "1970-01-01T00:00:00Z"  # the process never started
    assert cs["ready"] is False
    # The back-off doubles from 10s per restart up to 5m0s, printed as a Go duration.
    seconds = min(10 * 2 ** (cs["restartCount"] - 1), 300)
    delay = f"{seconds}s" if seconds < 60 else f"{seconds // 60}m{seconds % 60}s"
    uid = pod["metadata"]["uid"]
    assert waiting(pod)["message"] == (
        f"back-off {delay} restarting failed container=app-no-output pod=bad-command_{ns}({uid})"
    )

    failed = wait_for_event(testbed, ns, pod_name, "Failed", f"Error: {message}", min_count=2)
    assert failed["type"] == "Warning"
    assert_from_kubelet(failed, "app-no-output")
    backoff = wait_for_event(
        testbed,
        ns,
        pod_name,
        "BackOff",
        f"Back-off restarting failed container app-no-output in pod bad-command_{ns}({uid})",
    )
    assert backoff["type"] == "Warning"
    wait_for_event(testbed, ns, pod_name, "Created", "Created container: app-no-output")
    # A container that never ran has no output (logs.yaml: app-no-output).
    assert testbed.kubectl_run("-n", ns, "logs", pod_name, "--previous").stdout == ""


def test_badcommand_with_a_path_reports_the_missing_file(testbed: TestBed, switches: str) -> None:
    ns, pod_name = switches, "bad-command-path"
    message = f'{RUNC_PREFIX}exec: "/app/start.sh": stat /app/start.sh: no such file or directory: unknown'

    def start_error() -> dict[str, Any] | None:
        cs = first_status(get_pod(testbed, ns, pod_name))
        terminated = cs.get("lastState", {}).get("terminated") or cs.get("state", {}).get("terminated")
        return terminated if terminated and terminated.get("reason") == "StartError" else None

    assert wait_until("a StartError", start_error)["message"] == message
    wait_for_event(testbed, ns, pod_name, "Failed", f"Error: {message}")


def test_missing_env_crash_shows_the_traceback_in_previous_logs(testbed: TestBed, switches: str) -> None:
    ns, pod_name = switches, "missing-env"
    wait_until("a restart", lambda: first_status(get_pod(testbed, ns, pod_name)).get("restartCount", 0) >= 1)
    previous = testbed.kubectl_run("-n", ns, "logs", pod_name, "--previous").stdout.splitlines()
    assert previous[0] == "Traceback (most recent call last):"
    assert '    DATABASE_URL = os.environ["DATABASE_URL"]' in previous
    assert previous[-1] == "KeyError: 'DATABASE_URL'"
    assert "panic:" not in "\n".join(previous)  # not the default crash log


@pytest.mark.parametrize(
    ("pod_name", "message"),
    [
        ("missing-key", "couldn't find key password in Secret {ns}/db-credentials"),
        ("missing-configmap-key", "couldn't find key flags in ConfigMap {ns}/app-flags"),
        ("missing-secret", 'secret "db-credentials" not found'),
        ("missing-configmap", 'configmap "app-flags" not found'),
    ],
)
def test_configerror_names_the_missing_secret_or_configmap(
    testbed: TestBed, switches: str, pod_name: str, message: str
) -> None:
    ns = switches
    expected = message.format(ns=ns)
    pod = wait_for_waiting(testbed, ns, pod_name, "CreateContainerConfigError")
    assert waiting(pod)["message"] == expected
    assert pod["status"]["phase"] == "Pending"
    assert first_status(pod)["restartCount"] == 0
    assert condition(pod, "Ready")["status"] == "False"

    failed = wait_for_event(testbed, ns, pod_name, "Failed", f"Error: {expected}", min_count=2)
    assert failed["type"] == "Warning"
    assert_from_kubelet(failed, "app")
    wait_for_event(
        testbed, ns, pod_name, "Pulled", 'Container image "registry.example/app:1.0" already present on machine'
    )


@pytest.mark.parametrize(
    ("pod_name", "volume", "missing"),
    [
        ("missing-volume", "settings", 'configmap "app-settings" not found'),
        ("missing-secret-volume", "tls", 'secret "app-tls" not found'),
    ],
)
def test_mountfail_keeps_the_pod_creating_with_failed_mounts(
    testbed: TestBed, switches: str, pod_name: str, volume: str, missing: str
) -> None:
    ns = switches
    mount = wait_for_event(
        testbed, ns, pod_name, "FailedMount", f'MountVolume.SetUp failed for volume "{volume}" : {missing}', min_count=2
    )
    assert mount["type"] == "Warning"
    assert_from_kubelet(mount, None)
    pod = get_pod(testbed, ns, pod_name)
    assert pod["status"]["phase"] == "Pending"
    assert waiting(pod)["reason"] == "ContainerCreating"
    assert condition(pod, "Ready")["status"] == "False"
    # The kubelet gives up waiting for the volumes (after 2m3s; compressed to 20 s here).
    wait_for_event(
        testbed,
        ns,
        pod_name,
        "FailedMount",
        f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes=[], "
        "failed to process volumes=[]: context deadline exceeded",
        timeout=60,
    )


def test_liveness_failure_restarts_a_ready_container(testbed: TestBed, switches: str) -> None:
    ns, pod_name = switches, "liveness"

    def restarted() -> dict[str, Any] | None:
        pod = get_pod(testbed, ns, pod_name)
        return pod if first_status(pod).get("restartCount", 0) >= 1 else None

    pod = restarted() or wait_until("a restart", restarted)
    cs = first_status(pod)
    assert pod["status"]["phase"] == "Running"
    assert condition(pod, "Ready")["status"] == "True"
    assert cs["ready"] is True
    assert "running" in cs["state"]
    terminated = cs["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (137, "Error")

    unhealthy = wait_for_event(
        testbed, ns, pod_name, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 500", min_count=3
    )
    assert unhealthy["type"] == "Warning"
    assert_from_kubelet(unhealthy, "app-unhealthy")
    killing = wait_for_event(
        testbed, ns, pod_name, "Killing", "Container app-unhealthy failed liveness probe, will be restarted"
    )
    assert killing["type"] == "Normal"
    wait_for_event(testbed, ns, pod_name, "Started", "Started container app-unhealthy")

    restarts = cs["restartCount"]
    wait_until(
        f"restartCount to climb past {restarts}",
        lambda: first_status(get_pod(testbed, ns, pod_name))["restartCount"] > restarts,
    )
    # The app was killed, not crashed: its previous logs end in failing health checks (logs.yaml).
    previous = testbed.kubectl_run("-n", ns, "logs", pod_name, "--previous").stdout
    assert previous.splitlines()[-1] == "ERROR GET /healthz 500 5003.0ms: health check timed out"
