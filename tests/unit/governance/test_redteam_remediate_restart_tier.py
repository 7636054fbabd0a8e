"""Red team: the restart trivial tier (approved without a person) must mean "restart a named workload
outside production" and nothing else, read the way kubectl reads the command.

kubectl sends a `-p` that starts with `{` to the API server as written (JSON); anything else it converts
from YAML with go-yaml v2, whose merge keys (`<<`, also spelled `!!merge "\\x3c\\x3c"`) overwrite keys
written before them, where PyYAML keeps the written key. tests/integration/test_redteam_remediate.py shows
kubectl running the merge-key patch below as replicas 0 and image evil:latest.
"""

from __future__ import annotations

import pytest

from operate_mcp.config import Settings
from operate_mcp.governance.risk import assess_risk
from operate_mcp.kube.classifier import classify_command
from operate_mcp.model.command import CommandClass, ProposedCommand

RESTARTED = '"kubectl.kubernetes.io/restartedAt": "2026-11-30T01:00:00Z"'
RESTART_JSON = '{"spec":{"template":{"metadata":{"annotations":{' + RESTARTED + "}}}}}"
# What PyYAML reads as the restart patch alone; kubectl (go-yaml v2) lets the merged `spec` win.
MERGE_KEY_PATCH = (
    "!!map {spec: {template: {metadata: {annotations: {" + RESTARTED + "}}}}, "
    '!!merge "\\x3c\\x3c": {spec: {replicas: 0, template: {metadata: {annotations: {' + RESTARTED + "}}, "
    'spec: {containers: [{name: api, image: "evil:latest"}]}}}}}'
)


def annotations(inner: str) -> str:
    return '{"spec":{"template":{"metadata":{"annotations":{' + inner + "}}}}}"


def patch(body: str) -> tuple[str, ...]:
    return ("patch", "deployment", "api", "-n", "shop", "-p", body)


def tier(*argv: str) -> str:
    cmd = ProposedCommand(argv=["kubectl", *argv], description="x")
    return assess_risk([cmd], [], [], Settings(production_namespaces=["prod"])).tier.value


def test_the_merge_key_patch_is_a_command_a_proposal_may_carry():
    """The attack needs no forbidden character: the classifier lets it through as an ordinary patch."""
    verdict = classify_command(["kubectl", "patch", "deployment", "api", "-n", "shop", "-p", MERGE_KEY_PATCH], None)
    assert verdict.command_class is CommandClass.MUTATING


@pytest.mark.parametrize(
    "patch",
    [
        MERGE_KEY_PATCH,
        # The same restart patch in YAML spellings kubectl converts with another parser than ours.
        "--- " + RESTART_JSON,
        "!!map " + RESTART_JSON,
        " !!map {spec: {template: {metadata: {annotations: {" + RESTARTED + "}}}}}",
        # Duplicate keys: which one counts is the decoder's choice, and ours must not be the only reading.
        '{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"evil:latest"}]},'
        '"metadata":{"annotations":{' + RESTARTED + "}}}},"
        '"spec":{"template":{"metadata":{"annotations":{' + RESTARTED + "}}}}}",
        '{"spec":{"template":{"metadata":{"labels":{"app":"other"}},"metadata":{"annotations":{' + RESTARTED + "}}}}}",
    ],
)
def test_a_restart_patch_kubectl_may_read_differently_from_us_is_not_trivial(patch):
    assert tier("patch", "deployment", "api", "-n", "shop", "-p", patch) != "trivial"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # Held: the plain restart patch as kubectl's own `rollout restart` sends it stays trivial.
        (("patch", "deployment", "api", "-n", "shop", "-p", RESTART_JSON), "trivial"),
        (("patch", "deployments.v1.apps", "api", "-n", "shop", "--type", "merge", "-p", RESTART_JSON), "trivial"),
        (("rollout", "restart", "deploy/api", "sts/db", "-n", "shop"), "trivial"),
        # Held: strategic-merge directives and nulls are more than the one annotation.
        (patch('{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{' + RESTARTED + "}}}}}"), "medium"),
        (patch(annotations('"\\u0024patch":"replace"')), "medium"),
        (patch(annotations('"kubectl.kubernetes.io/restartedAt":null')), "medium"),
        (patch(annotations(RESTARTED + ',"sidecar.istio.io/inject":"false"')), "medium"),
        (("patch", "deployment", "api", "-n", "shop", "--type=JSON", "-p", RESTART_JSON), "medium"),
        # Held: a custom resource spelled like a Deployment is not a Deployment.
        (("patch", "deployments.example.com", "api", "-n", "shop", "-p", RESTART_JSON), "medium"),
        (("rollout", "restart", "deployments.apps.example.com/api", "-n", "shop"), "medium"),
        # Held: namespace tricks end in production (kubectl uses the last -n; -n=prod is prod).
        (("rollout", "restart", "deployment/api", "-n", "shop", "-n", "prod"), "critical"),
        (("rollout", "restart", "deployment/api", "-nprod"), "critical"),
        (("rollout", "restart", "deployment/api", "-n=prod"), "critical"),
        (("rollout", "restart", "deployment/api", "--namespace=shop", "--namespace", "prod"), "critical"),
        (("patch", "deployment", "api", "-n", "shop", "-n", "prod", "-p", RESTART_JSON), "critical"),
        # Held: more than named workloads.
        (("rollout", "restart", "deployment", "--all", "-n", "shop"), "critical"),  # unparseable: no --all here
        (("rollout", "restart", "deployment/api", "-l", "app=api", "-n", "shop"), "medium"),
        (("rollout", "restart", "deployment/api", "-A"), "critical"),
        (("patch", "deployment", "api", "-n", "shop", "--subresource=scale", "-p", RESTART_JSON), "medium"),
    ],
)
def test_restart_tier_attacks_that_hold(argv, expected):
    assert tier(*argv) == expected
