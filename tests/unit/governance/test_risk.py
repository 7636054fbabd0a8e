"""Risk tiers decide who must approve: a mistake here lets the agent approve itself."""

from __future__ import annotations

import pytest

from operate_mcp.config import Settings
from operate_mcp.governance.risk import assess_risk
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject


def tier(*argv: str, replicas: int | None = None) -> str:
    observed = []
    if replicas is not None:
        observed = [ObservedObject(kind="Deployment", name="api", namespace="shop", exists=True, replicas=replicas)]
    cmd = ProposedCommand(argv=["kubectl", *argv], description="x")
    return assess_risk([cmd], observed, [], Settings()).tier.value


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            ("annotate", "deployment/api", "kubectl.kubernetes.io/restartedAt=2026-11-29T10:00:00Z", "-n", "shop"),
            "trivial",
        ),
        (("annotate", "deployment/api", "note=x", "-n", "shop"), "low"),
        (("label", "namespaces", "--all", "pod-security.kubernetes.io/enforce=privileged", "--overwrite"), "critical"),
        (("label", "secrets", "--all", "-A", "x=y"), "critical"),
        (("label", "nodes", "--all", "x=y"), "critical"),
        (("label", "pods", "-l", "app=web", "-A", "app=other", "--overwrite"), "critical"),
        (("label", "pods", "-l", "app=web", "-n", "shop", "app=other", "--overwrite"), "medium"),
        (("label", "deploy", "api", "team=x"), "low"),
        (("annotate", "deployment/api", "note=x", "-n", "production"), "critical"),
        (("set", "image", "deployment/api", "api=nginx:1.27.3", "-n", "shop"), "medium"),
        (("delete", "deployment", "api", "-n", "shop"), "critical"),
        (("rollout", "undo", "deployment/api", "-n", "shop"), "medium"),
    ],
)
def test_tiers(argv, expected):
    assert tier(*argv) == expected


def test_small_scale_is_low_and_large_or_to_zero_is_medium():
    assert tier("scale", "deployment/api", "--replicas=5", "-n", "shop", replicas=3) == "low"
    assert tier("scale", "deployment/api", "--replicas=9", "-n", "shop", replicas=3) == "medium"
    assert tier("scale", "deployment/api", "--replicas=0", "-n", "shop", replicas=1) == "medium"
    assert tier("scale", "deployment/api", "--replicas=4", "-n", "shop") == "medium"


RESTART_PATCH = (
    '{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-11-30T01:00:00Z"}}}}}'
)


@pytest.mark.parametrize(
    "argv",
    [
        ("rollout", "restart", "deployment/api", "-n", "shop"),
        ("rollout", "restart", "statefulset", "db", "-n", "shop"),
        ("patch", "deployment", "api", "-n", "shop", "-p", RESTART_PATCH),
        ("patch", "daemonset/agent", "-n", "shop", "--type=merge", "-p", RESTART_PATCH),
    ],
)
def test_a_restart_of_a_named_workload_outside_production_is_trivial(argv):
    assert tier(*argv) == "trivial"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Production stays critical, whatever the change.
        (("rollout", "restart", "deployment/api", "-n", "prod"), "critical"),
        # By selector or by type: not one named workload.
        (("rollout", "restart", "deployment", "-l", "app=api", "-n", "shop"), "medium"),
        (("rollout", "restart", "deployment", "-n", "shop"), "medium"),
        # The patch carries something besides the restart annotation.
        (
            ("patch", "deployment", "api", "-n", "shop", "-p",
             '{"spec":{"replicas":0,"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"x"}}}}}'),
            "medium",
        ),
        (
            ("patch", "deployment", "api", "-n", "shop", "-p",
             '{"spec":{"template":{"metadata":{"annotations":{"sidecar.istio.io/inject":"false"}}}}}'),
            "medium",
        ),
        # A JSON patch or a status patch is not the restart patch.
        (("patch", "deployment", "api", "-n", "shop", "--type=json", "-p",
          '[{"op":"add","path":"/spec/template/metadata/annotations/kubectl.kubernetes.io~1restartedAt","value":"x"}]'),
         "medium"),
        (("patch", "deployment", "api", "-n", "shop", "--subresource=status", "-p", RESTART_PATCH), "medium"),
        # Not a workload that restarts its pods.
        (("patch", "configmap", "api", "-n", "shop", "-p", RESTART_PATCH), "medium"),
    ],
)
def test_only_the_plain_restart_of_named_workloads_outside_production_is_trivial(argv, expected):
    settings_tier = assess_risk(
        [ProposedCommand(argv=["kubectl", *argv], description="x")], [], [], Settings(production_namespaces=["prod"])
    ).tier.value
    assert settings_tier == expected
