"""What a snapshot keeps of a pod: the reason it is not running, whether a container or the pod as a whole
says it (an evicted pod has no waiting container, only `status.reason`)."""

from __future__ import annotations

from operate_mcp.observe.context import pod_state


def test_an_evicted_pod_is_kept_with_its_reason():
    pod = {
        "metadata": {"name": "web-1", "namespace": "shop"},
        "status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."},
    }
    state = pod_state(pod, "deployment/web")
    assert (state.phase, state.waiting_reason, state.ready) == ("Failed", "Evicted", False)


def test_a_crash_looping_container_reason_wins_and_the_last_exit_is_kept():
    pod = {
        "metadata": {"name": "web-2", "namespace": "shop"},
        "spec": {"nodeName": "n1", "containers": [{"name": "web", "image": "web:2"}]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {
                    "name": "web",
                    "restartCount": 3,
                    "imageID": "docker.io/web@sha256:abc",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                }
            ],
        },
    }
    state = pod_state(pod, "deployment/web")
    assert (state.waiting_reason, state.last_termination_reason, state.last_exit_code) == (
        "CrashLoopBackOff",
        "OOMKilled",
        137,
    )
    assert state.restarts == 3 and state.images[0].image_id == "docker.io/web@sha256:abc"
