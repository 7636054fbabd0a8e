"""Fixtures for integration tests against a real Kubernetes API server.

By default the tests run against the project's test bed (``scripts/testbed up``: etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and KWOK fake nodes on
127.0.0.1; see docs/testbed.md). A bed that is already running and healthy is reused;
one started by test sessions is stopped when the last of them ends (unless
``OPERATE_MCP_TEST_KEEP_BED=1``).

With ``OPERATE_MCP_TEST_USE_EXISTING_CLUSTER=1`` the tests use the cluster ``KUBECONFIG``
points at (kind, minikube, a real one) and ``kubectl`` from PATH instead.

Concurrent pytest sessions share the bed (see the ``testbed`` fixture).

If the bed cannot start, every integration test fails with the reason and the tail of
the log. They are never skipped.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pathlib
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
TESTBED_SCRIPT = REPO_ROOT / "scripts" / "testbed"
INTEGRATION_DIR = pathlib.Path(__file__).resolve().parent

USE_EXISTING_ENV = "OPERATE_MCP_TEST_USE_EXISTING_CLUSTER"
KEEP_BED_ENV = "OPERATE_MCP_TEST_KEEP_BED"
UP_TIMEOUT_ENV = "OPERATE_MCP_TESTBED_UP_TIMEOUT"
CLUSTER_ENV = "OPERATE_MCP_TESTBED_CLUSTER"  # read by scripts/testbed too
DEFAULT_CLUSTER = "operate-mcp"

LOG_TAIL_LINES = 60


class KubectlError(subprocess.CalledProcessError):
    """A kubectl call exited non-zero; str() carries its stderr and stdout."""

    def __str__(self) -> str:
        return (
            f"{super().__str__()}\n--- stderr ---\n{(self.stderr or '').strip()}"
            f"\n--- stdout ---\n{(self.stdout or '').strip()}"
        )


@dataclass(frozen=True)
class TestBed:
    """A reachable cluster: its kubeconfig, the kubectl to use, and the bed's bin dir
    (None when an existing cluster is used)."""

    __test__ = False  # not a test class, despite the name

    kubeconfig: pathlib.Path
    kubectl: str
    bin_dir: pathlib.Path | None

    def kubectl_run(
        self,
        *args: str,
        stdin: str | None = None,
        check: bool = True,
        timeout: float = 60,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kubectl --kubeconfig <bed> *args`` (an argv list, never a shell).

        With check=True a non-zero exit raises KubectlError (a CalledProcessError).
        """
        argv = [self.kubectl, "--kubeconfig", str(self.kubeconfig), *args]
        proc = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=self._env(),
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, argv, output=proc.stdout, stderr=proc.stderr)
        return proc

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        if self.bin_dir is not None:
            env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env


def _tail(text: str, lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _component_log_tails(kubeconfig: pathlib.Path | None) -> str:
    """Tails of the KWOK cluster's component logs (they sit next to its kubeconfig)."""
    if kubeconfig is None:
        return ""
    logs = kubeconfig.parent / "logs"
    if not logs.is_dir():
        return ""
    parts = []
    for log in sorted(logs.glob("*.log")):
        try:
            text = log.read_text(errors="replace")
        except OSError:
            continue
        parts.append(f"--- {log} ---\n{_tail(text, 15)}")
    return "\n".join(parts)


def _fail_bed(reason: str, log: str = "", kubeconfig: pathlib.Path | None = None) -> None:
    message = f"the Kubernetes test bed could not start: {reason}"
    if log.strip():
        message += f"\n--- scripts/testbed output (tail) ---\n{_tail(log)}"
    components = _component_log_tails(kubeconfig)
    if components:
        message += f"\n{components}"
    pytest.fail(message, pytrace=False)


def _existing_cluster() -> TestBed:
    raw = os.environ.get("KUBECONFIG", "")
    first = next((p for p in raw.split(os.pathsep) if p), "")
    kubeconfig = pathlib.Path(first).expanduser() if first else pathlib.Path.home() / ".kube" / "config"
    if not kubeconfig.is_file():
        _fail_bed(f"{USE_EXISTING_ENV}=1 but the kubeconfig {kubeconfig} does not exist")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        _fail_bed(f"{USE_EXISTING_ENV}=1 but there is no kubectl on PATH")
        raise AssertionError("unreachable")
    bed = TestBed(kubeconfig=kubeconfig, kubectl=kubectl, bin_dir=None)
    try:
        bed.kubectl_run("get", "--raw", "/readyz", timeout=20)
    except (subprocess.SubprocessError, OSError) as exc:
        _fail_bed(f"the existing cluster in {kubeconfig} is not ready: {exc}")
    return bed


def _run_testbed(command: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TESTBED_SCRIPT), command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=REPO_ROOT,
    )


def _bin_dir() -> pathlib.Path:
    proc = _run_testbed("bin-dir", timeout=30)
    if proc.returncode != 0:
        _fail_bed("`scripts/testbed bin-dir` failed", proc.stderr)
    return pathlib.Path(proc.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def _bed_lock(state_dir: pathlib.Path) -> Iterator[None]:
    """Serialise starting and stopping the bed between concurrent pytest sessions."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_leases(leases: pathlib.Path) -> list[int]:
    """PIDs of pytest sessions using the bed; stale lease files are removed."""
    alive = []
    for lease in leases.glob("*.pid"):
        try:
            pid = int(lease.stem)
        except ValueError:
            continue
        if _pid_alive(pid):
            alive.append(pid)
        else:
            lease.unlink(missing_ok=True)
    return alive


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestBed]:
    """The cluster integration tests run against (see the module docstring).

    Several pytest sessions may share the bed: each holds a lease (a pid file) while it
    runs. The bed is stopped by the last session out, and only if a test session started
    it (a bed started by hand with `scripts/testbed up` is left running).
    """
    if os.environ.get(USE_EXISTING_ENV) == "1":
        yield _existing_cluster()
        return

    bin_dir = _bin_dir()
    state_dir = bin_dir.parent  # the cache dir of this Kubernetes version
    leases = state_dir / "test-leases" / os.environ.get(CLUSTER_ENV, DEFAULT_CLUSTER)
    started_by_tests = leases / "started-by-tests"
    my_lease = leases / f"{os.getpid()}.pid"
    timeout = float(os.environ.get(UP_TIMEOUT_ENV, "3600"))
    with _bed_lock(state_dir):
        leases.mkdir(parents=True, exist_ok=True)
        already_running = _run_testbed("status", timeout=60).returncode == 0
        try:
            up = _run_testbed("up", timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            out = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
            _fail_bed(f"`scripts/testbed up` did not finish within {timeout:.0f}s", out)
            raise AssertionError("unreachable") from exc
        lines = up.stdout.strip().splitlines()
        if up.returncode != 0 or not lines:
            _fail_bed(f"`scripts/testbed up` exited {up.returncode}", up.stderr + up.stdout)
        kubeconfig = pathlib.Path(lines[-1])
        if not kubeconfig.is_file():
            _fail_bed(f"`scripts/testbed up` printed {kubeconfig}, which is not a file", up.stderr)
        if not already_running:
            started_by_tests.touch()
        my_lease.write_text(f"{os.getpid()}\n")
    try:
        yield TestBed(kubeconfig=kubeconfig, kubectl=str(bin_dir / "kubectl"), bin_dir=bin_dir)
    finally:
        with _bed_lock(state_dir):
            my_lease.unlink(missing_ok=True)
            last_out = not _live_leases(leases)
            if last_out and started_by_tests.exists() and os.environ.get(KEEP_BED_ENV) != "1":
                _run_testbed("down", timeout=120)
                started_by_tests.unlink(missing_ok=True)


def _wait_for_default_service_account(bed: TestBed, namespace: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        proc = bed.kubectl_run("-n", namespace, "get", "serviceaccount", "default", "-o", "name", check=False)
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"namespace {namespace}: no default ServiceAccount after {timeout:.0f}s: {proc.stderr}")
        time.sleep(0.2)


def create_namespace(bed: TestBed) -> str:
    """Create a fresh namespace ``t-<short-uuid>`` and wait for its default ServiceAccount."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    bed.kubectl_run("create", "namespace", name)
    bed.kubectl_run("label", "namespace", name, "operate-mcp.dev/test=true")
    _wait_for_default_service_account(bed, name)
    return name


def delete_namespace(bed: TestBed, name: str) -> None:
    bed.kubectl_run("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture
def namespace(testbed: TestBed) -> Iterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = create_namespace(testbed)
    try:
        yield name
    finally:
        delete_namespace(testbed, name)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration with ``integration``."""
    for item in items:
        if INTEGRATION_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.integration)
