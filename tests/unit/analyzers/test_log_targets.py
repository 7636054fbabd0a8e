"""Which container logs a diagnosis reads: the ones that explain a restart, and never a healthy container's."""

from __future__ import annotations

from typing import Any

from operate_mcp.analyzers.logs import LogRequest, wanted_logs


def pod(name: str, *statuses: dict[str, Any], phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "shop"},
        "status": {"phase": phase, "containerStatuses": list(statuses)},
    }


def cs(name: str, *, ready: bool, restarts: int = 0, last_exit: int | None = None, exit_now: int | None = None):
    status: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {}}}
    if last_exit is not None:
        status["lastState"] = {"terminated": {"exitCode": last_exit, "reason": "Error"}}
    if exit_now is not None:
        status["state"] = {"terminated": {"exitCode": exit_now}}
    return status


def test_a_crash_looping_container_has_its_previous_log_read_and_a_failed_one_its_own():
    pods = [
        pod("crashy", cs("app", ready=False, restarts=4, last_exit=1)),
        pod("failed", cs("job", ready=False, exit_now=2)),
    ]
    assert wanted_logs(pods) == [LogRequest("shop", "crashy", "app", True), LogRequest("shop", "failed", "job", False)]


def test_a_ready_container_killed_by_its_liveness_probe_has_its_previous_log_read():
    """Ready between kills: the log of the killed instance says why the health check failed."""
    pods = [pod("api", cs("app", ready=True, restarts=3, last_exit=137))]
    assert wanted_logs(pods) == [LogRequest("shop", "api", "app", True)]


def test_healthy_containers_are_never_read():
    pods = [
        pod("fine", cs("app", ready=True)),
        pod("restarted-cleanly", cs("app", ready=True, restarts=1, last_exit=0)),
        pod("done", cs("app", ready=False, exit_now=0), phase="Succeeded"),
    ]
    assert wanted_logs(pods) == []


def test_failing_containers_come_first_when_the_limit_is_reached():
    killed = [pod(f"ready-{i}", cs("app", ready=True, restarts=2, last_exit=137)) for i in range(3)]
    crashing = [pod(f"crash-{i}", cs("app", ready=False, restarts=2, last_exit=1)) for i in range(3)]
    got = wanted_logs([*killed, *crashing], limit=4)
    assert [r.pod for r in got] == ["crash-0", "crash-1", "crash-2", "ready-0"]
