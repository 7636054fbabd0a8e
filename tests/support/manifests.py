"""Manifests and scripted answers the integration tests share."""

from __future__ import annotations

import textwrap
from typing import Any

from operate_mcp.agent.scripted import ScriptedProvider
from operate_mcp.config import Settings
from operate_mcp.kube.runner import Kubectl
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.sessions import SessionStore


def deployment(name: str, namespace: str, image: str = "nginx:1.25.5", replicas: int = 2) -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          replicas: {replicas}
          selector: {{matchLabels: {{app: {name}}}}}
          template:
            metadata: {{labels: {{app: {name}}}}}
            spec:
              containers:
              - name: {name}
                image: {image}
                resources: {{requests: {{cpu: 100m, memory: 64Mi}}}}
        """)


def hpa(name: str, namespace: str, min_replicas: object = 2, max_replicas: int = 6) -> str:
    return textwrap.dedent(f"""\
        apiVersion: autoscaling/v2
        kind: HorizontalPodAutoscaler
        metadata: {{name: {name}, namespace: {namespace}}}
        spec:
          scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: {name}}}
          minReplicas: {min_replicas}
          maxReplicas: {max_replicas}
          metrics:
          - type: Resource
            resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 70}}}}
        """)


def bed_settings(testbed: Any, tmp_path: Any, **overrides: Any) -> Settings:
    """Settings pointing at the test bed, with a private data directory, approver registry and server
    approval key per test (both outside the data dir, as in a real installation)."""
    overrides.setdefault("approvers_dir", tmp_path / "config" / "approvers")
    overrides.setdefault("approval_key_file", tmp_path / "config" / "approval.key")
    overrides.setdefault("kubeconfig", testbed.kubeconfig)
    return Settings(data_dir=tmp_path / "data", kubectl=testbed.kubectl, **overrides)


def deps_for(settings: Settings, provider: ScriptedProvider | None, audit: Any = None) -> OperateDeps:
    return OperateDeps(
        settings=settings,
        kubectl=Kubectl(settings),
        provider=provider,
        sessions=SessionStore(settings.data_dir, settings.session_ttl_seconds),
        audit=audit,
    )


def proposal(
    analysis: str, commands: list[dict[str, Any]], rollback: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {"analysis": analysis, "current_state": "", "commands": commands, "rollback_commands": rollback or []}
