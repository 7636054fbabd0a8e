"""Which analyzers run, and running them over objects the caller has read (still no I/O here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from operate_mcp.analyzers.base import Analyzer
from operate_mcp.analyzers.configmap import ConfigMapAnalyzer
from operate_mcp.analyzers.cronjob import CronJobAnalyzer
from operate_mcp.analyzers.daemonset import DaemonSetAnalyzer
from operate_mcp.analyzers.deployment import DeploymentAnalyzer
from operate_mcp.analyzers.gateway import GatewayAnalyzer, GatewayClassAnalyzer, HTTPRouteAnalyzer
from operate_mcp.analyzers.hpa import HPAAnalyzer
from operate_mcp.analyzers.ingress import IngressAnalyzer
from operate_mcp.analyzers.job import JobAnalyzer
from operate_mcp.analyzers.networkpolicy import NetworkPolicyAnalyzer
from operate_mcp.analyzers.node import NodeAnalyzer
from operate_mcp.analyzers.objects import KubeObject
from operate_mcp.analyzers.pdb import PDBAnalyzer
from operate_mcp.analyzers.pod import PodAnalyzer
from operate_mcp.analyzers.pvc import PVCAnalyzer
from operate_mcp.analyzers.related import Related
from operate_mcp.analyzers.replicaset import ReplicaSetAnalyzer
from operate_mcp.analyzers.service import ServiceAnalyzer
from operate_mcp.analyzers.statefulset import StatefulSetAnalyzer
from operate_mcp.analyzers.webhook import MutatingWebhookAnalyzer, ValidatingWebhookAnalyzer
from operate_mcp.model.finding import SEVERITIES, Finding

CORE: tuple[Analyzer, ...] = (PodAnalyzer(), DeploymentAnalyzer())
# Every analyzer `diagnose` and `remediate` run: one per kind.
ALL: tuple[Analyzer, ...] = (
    *CORE,
    ReplicaSetAnalyzer(),
    StatefulSetAnalyzer(),
    DaemonSetAnalyzer(),
    JobAnalyzer(),
    CronJobAnalyzer(),
    HPAAnalyzer(),
    PDBAnalyzer(),
    ServiceAnalyzer(),
    IngressAnalyzer(),
    PVCAnalyzer(),
    ConfigMapAnalyzer(),
    NetworkPolicyAnalyzer(),
    NodeAnalyzer(),
    ValidatingWebhookAnalyzer(),
    MutatingWebhookAnalyzer(),
    GatewayClassAnalyzer(),
    GatewayAnalyzer(),
    HTTPRouteAnalyzer(),
)


def resources_read(analyzers: Sequence[Analyzer]) -> list[str]:
    """Every resource the analyzers need, once each, in a stable order: what the caller lists."""
    return list(dict.fromkeys(r for a in analyzers for r in (a.resource, *a.reads)))


def run_analyzers(analyzers: Sequence[Analyzer], objects: Mapping[str, Sequence[KubeObject]]) -> list[Finding]:
    """Findings for one namespace's objects (by resource), worst first."""
    related = Related(objects)
    findings = [f for a in analyzers for f in a.analyze(objects.get(a.resource, ()), related)]
    return sorted(findings, key=lambda f: (SEVERITIES.index(f.severity), f.kind, f.namespace or "", f.name))
