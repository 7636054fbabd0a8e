"""A run's category and its failing step's name come from what ran, in code: the commands' verbs, kinds and
manifests, never the intent's words."""

from __future__ import annotations

import pytest

from operate_mcp.model.command import ProposedCommand
from operate_mcp.records.category import categorize, step_group, step_kind

HPA = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 5
"""
PDB = """apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: shop}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
"""
BACKUP = """apiVersion: velero.io/v1
kind: Backup
metadata: {name: nightly, namespace: velero}
spec:
  includedNamespaces: [shop]
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:1.27"}]}
"""
STATUS = "kubectl rollout status deployment/web -n shop"


def cmd(line: str, stdin: str | None = None) -> ProposedCommand:
    return ProposedCommand(argv=line.split(), stdin=stdin, description="test")


CASES: list[tuple[str, list[ProposedCommand], str]] = [
    ("set image, then wait for the rollout", [cmd("kubectl set image deployment/web web=nginx:1.27 -n shop"),
                                              cmd(STATUS)], "update"),
    ("apply a Deployment", [cmd("kubectl apply -f -", DEPLOYMENT)], "update"),
    ("create a deployment", [cmd("kubectl create deployment web --image=nginx:1.27 -n shop")], "update"),
    ("patch resources", [cmd("kubectl set resources deployment/web --limits=memory=512Mi -n shop")], "update"),
    ("scale, then wait", [cmd("kubectl scale deployment/web --replicas=5 -n shop"), cmd(STATUS)], "scale"),
    ("kubectl autoscale", [cmd("kubectl autoscale deployment web --min=2 --max=5 -n shop")], "autoscale"),
    ("apply an HPA", [cmd("kubectl apply -f -", HPA)], "autoscale"),
    ("apply a PDB", [cmd("kubectl apply -f -", PDB)], "make-ha"),
    ("create a PDB and scale", [cmd("kubectl create poddisruptionbudget web --selector=app=web --min-available=1"
                                    " -n shop"), cmd("kubectl scale deployment/web --replicas=3 -n shop")], "make-ha"),
    ("apply a Velero Backup", [cmd("kubectl apply -f -", BACKUP)], "backup"),
    ("rollout restart, then wait", [cmd("kubectl rollout restart deployment/web -n shop"), cmd(STATUS)], "restart"),
    ("rollout undo", [cmd("kubectl rollout undo deployment/web -n shop")], "rollback"),
    ("delete a pod", [cmd("kubectl delete pod web-1 -n shop")], "delete"),
    ("only reads", [cmd("kubectl get pods -n shop"), cmd(STATUS)], "other"),
    ("nothing parsable", [cmd("helm upgrade web chart")], "other"),
]


@pytest.mark.parametrize(("commands", "expected"), [(c, e) for _, c, e in CASES], ids=[n for n, _, _ in CASES])
def test_an_operate_run_is_categorised_by_what_it_changes(commands: list[ProposedCommand], expected: str) -> None:
    assert categorize("operate", commands) == expected


def test_rollback_and_remediate_runs_are_named_by_their_purpose() -> None:
    scale = [cmd("kubectl scale deployment/web --replicas=5 -n shop")]

    assert categorize("rollback", scale) == "rollback"
    assert categorize("remediate", scale) == "remediate"
    assert categorize("replay", scale) == "scale"


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("kubectl set image deployment/checkout app=checkout:v2 -n shop", "set image deployment"),
        ("kubectl set image deploy/other app=other:v9", "set image deployment"),
        ("kubectl scale sts db --replicas=3", "scale statefulset"),
        ("kubectl rollout status deployment/checkout", "rollout status deployment"),
        ("kubectl apply -f -", "apply"),
        ("kubectl create poddisruptionbudget web --selector=app=web --min-available=1", "create poddisruptionbudget"),
        ("kubectl delete pod/a svc/b", "delete pod,service"),
        ("kubectl frobnicate x", "frobnicate"),
    ],
)
def test_a_step_is_named_by_verb_and_kind_without_names_or_flags(line: str, kind: str) -> None:
    assert step_kind(line.split()) == kind


def test_the_failing_step_group_prefers_the_failed_command_then_reads_the_recorded_step() -> None:
    assert step_group(["kubectl", "scale", "deployment/api", "--replicas=3"], "check:rollout") == "scale deployment"
    assert step_group(None, "check:rollout") == "check:rollout"
    assert step_group(None, "kubectl rollout status deployment/checkout -n shop") == "rollout status deployment"
    assert step_group(None, "kubectl 'unterminated") == "kubectl 'unterminated"
    assert step_group(None, None) is None
