"""Policies in code: the starter policies' CEL rules over every way a change can be written."""

from __future__ import annotations

import textwrap

import pytest

from operate_mcp.knowledge.changes import changes_of, image_ref
from operate_mcp.knowledge.models import Policy, load_yaml_items, parse_item, starter_dir
from operate_mcp.knowledge.policies import PolicyRuleError, evaluate_policies, observed_lookup, validate_policy
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject


@pytest.fixture(scope="module")
def policies() -> list[Policy]:
    found = [p for p in load_yaml_items(starter_dir() / "policies") if isinstance(p, Policy)]
    assert {p.id for p in found} == {"production-approval", "scaling-constraints", "no-latest-tag",
                                     "no-namespace-deletion"}
    return found


def cmd(*argv: str, stdin: str | None = None) -> ProposedCommand:
    return ProposedCommand(argv=["kubectl", *argv], stdin=stdin, description="test")


def failed(checks, policy_id: str):
    found = [c for c in checks if c.policy_id == policy_id]
    assert len(found) == 1
    return None if found[0].passed else found[0]


def deployment(replicas: int = 3, image: str = "nginx:1.27.3", labels: str = "{app: api}") -> str:
    return textwrap.dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: api, namespace: shop, labels: {labels}}}
        spec:
          replicas: {replicas}
          template:
            spec:
              initContainers: [{{name: init, image: busybox:1.36}}]
              containers: [{{name: api, image: "{image}"}}]
        """)


def test_every_shipped_policy_compiles_and_runs(policies) -> None:
    for p in policies:
        validate_policy(p)


@pytest.mark.parametrize("command", [
    cmd("scale", "deployment/api", "--replicas=500", "-n", "shop"),
    cmd("scale", "deployment", "api", "--replicas", "500"),
    cmd("apply", "-f", "-", stdin=deployment(replicas=500)),
    cmd("patch", "deployment", "api", "-p", '{"spec":{"replicas":500}}'),
    cmd("patch", "deployment", "api", "--type=json", "-p", '[{"op":"replace","path":"/spec/replicas","value":500}]'),
    cmd("create", "deployment", "web", "--image=nginx:1.27", "--replicas=500"),
    cmd("autoscale", "deployment", "api", "--min=2", "--max=500"),
])
def test_more_than_100_replicas_is_blocked_however_it_is_written(policies, command) -> None:
    check = failed(evaluate_policies(policies, [command]), "scaling-constraints")
    assert check is not None and check.effect == "block"
    assert "500" in check.message and "exceeds the maximum of 100" in check.message


def test_a_reasonable_change_passes_every_policy(policies) -> None:
    checks = evaluate_policies(policies, [cmd("scale", "deployment/api", "--replicas=5", "-n", "shop"),
                                          cmd("apply", "-f", "-", stdin=deployment())])
    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    assert {c.policy_id for c in checks} == {p.id for p in policies}


@pytest.mark.parametrize(("command", "image"), [
    (cmd("set", "image", "deployment/api", "api=nginx:latest", "-n", "shop"), "nginx:latest"),
    (cmd("set", "image", "deployment/api", "api=nginx"), "nginx"),
    (cmd("apply", "-f", "-", stdin=deployment(image="registry:5000/team/api")), "registry:5000/team/api"),
    (cmd("apply", "-f", "-", stdin=deployment(image="ghcr.io/acme/api:latest")), "ghcr.io/acme/api:latest"),
    (cmd("patch", "deployment", "api", "-p",
         '{"spec":{"template":{"spec":{"containers":[{"name":"api","image":"api:latest"}]}}}}'), "api:latest"),
    (cmd("create", "deployment", "web", "--image=nginx"), "nginx"),
])
def test_latest_or_untagged_images_are_blocked(policies, command, image) -> None:
    check = failed(evaluate_policies(policies, [command]), "no-latest-tag")
    assert check is not None and check.effect == "block"
    assert f"image {image} is not pinned" in check.message


@pytest.mark.parametrize("image", ["nginx:1.27.3", "registry:5000/team/api:2.0",
                                   "nginx@sha256:" + "a" * 64, "nginx:latest@sha256:" + "b" * 64])
def test_pinned_images_pass(policies, image) -> None:
    assert failed(evaluate_policies(policies, [cmd("set", "image", "deployment/api", f"api={image}")]),
                  "no-latest-tag") is None


def test_image_refs_split_name_tag_and_digest() -> None:
    assert image_ref("registry:5000/a/b:1.2", "c") == {"ref": "registry:5000/a/b:1.2", "name": "registry:5000/a/b",
                                                      "tag": "1.2", "digest": "", "container": "c"}
    assert image_ref("nginx")["tag"] == ""
    assert image_ref("nginx@sha256:abc123")["digest"] == "sha256:abc123"


@pytest.mark.parametrize("command", [
    cmd("delete", "namespace", "shop"),
    cmd("delete", "ns/shop"),
    cmd("delete", "ns", "-l", "team=x"),
    cmd("delete", "-f", "-", stdin="apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n"),
])
def test_deleting_a_namespace_is_blocked(policies, command) -> None:
    check = failed(evaluate_policies(policies, [command]), "no-namespace-deletion")
    assert check is not None and check.effect == "block" and "namespace" in check.message


def test_deleting_a_pod_is_not_a_namespace_deletion(policies) -> None:
    assert failed(evaluate_policies(policies, [cmd("delete", "pod", "api-1", "-n", "shop")]),
                  "no-namespace-deletion") is None


def test_production_by_name_or_label_raises_the_tier(policies) -> None:
    by_name = failed(evaluate_policies(policies, [cmd("rollout", "restart", "deployment/api", "-n", "prod")]),
                     "production-approval")
    assert by_name is not None and by_name.effect == "raise-tier" and "namespace prod is production" in by_name.message
    labelled = evaluate_policies(policies, [cmd("rollout", "restart", "deployment/api", "-n", "shop")],
                                 namespace_labels=lambda ns: {"environment": "production"} if ns == "shop" else {})
    assert failed(labelled, "production-approval") is not None
    plain = evaluate_policies(policies, [cmd("rollout", "restart", "deployment/api", "-n", "shop")],
                              namespace_labels=lambda ns: {"environment": "staging"})
    assert failed(plain, "production-approval") is None


def test_scaling_down_more_than_half_at_once_is_blocked(policies) -> None:
    observed = [ObservedObject(kind="Deployment", resource="deployments", name="api", namespace="shop", exists=True,
                               replicas=10)]
    too_far = evaluate_policies(policies, [cmd("scale", "deployment/api", "--replicas=4", "-n", "shop")],
                                observe=observed_lookup(observed))
    check = failed(too_far, "scaling-constraints")
    assert check is not None and "scale-down from 10 to 4 removes more than half" in check.message
    assert "go to 5 first" in check.message
    half = evaluate_policies(policies, [cmd("scale", "deployment/api", "--replicas=5", "-n", "shop")],
                             observe=observed_lookup(observed))
    assert failed(half, "scaling-constraints") is None


def test_ha_services_keep_two_replicas(policies) -> None:
    ha = {"exists": True, "replicas": 3, "labels": {"operate-mcp.dev/ha": "true"}}
    one = evaluate_policies(policies, [cmd("scale", "deployment/api", "--replicas=1", "-n", "shop")],
                            observe=lambda change: ha)
    check = failed(one, "scaling-constraints")
    assert check is not None and "at least 2 replicas" in check.message
    manifest = evaluate_policies(policies, [cmd("apply", "-f", "-", stdin=deployment(
        replicas=1, labels='{app: api, "operate-mcp.dev/ha": "true"}'))])
    assert failed(manifest, "scaling-constraints") is not None
    not_ha = evaluate_policies(policies, [cmd("scale", "deployment/api", "--replicas=1", "-n", "shop")],
                               observe=lambda change: {"exists": True, "replicas": 2, "labels": {}})
    assert failed(not_ha, "scaling-constraints") is None


def test_the_change_view_has_every_key_for_every_command() -> None:
    changes = changes_of([cmd("apply", "-f", "-", stdin=deployment() + "---\n" + deployment(replicas=4)),
                          cmd("rollout", "undo", "deployment/api"),
                          ProposedCommand(argv=["kubectl", "exec", "--", "sh"], description="x")])
    assert [c["index"] for c in changes] == [1, 1, 2, 3]
    assert {frozenset(c) for c in changes} == {frozenset(changes[0])}
    assert changes[0]["kind"] == "Deployment" and changes[0]["resource"] == "deployments"
    assert [i["ref"] for i in changes[0]["images"]] == ["busybox:1.36", "nginx:1.27.3"]
    assert changes[1]["replicas"] == 4


def test_secret_data_is_not_in_the_change_view() -> None:
    secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n"
    (change,) = changes_of([cmd("apply", "-f", "-", stdin=secret)])
    assert "hunter2" not in str(change["manifest"])


def _policy(**rule: str) -> Policy:
    item = parse_item({"kind": "policy", "id": "custom", "name": "Custom", "description": "d", "rules": [rule]})
    assert isinstance(item, Policy)
    return item


def test_a_rule_that_does_not_compile_is_refused_at_import() -> None:
    with pytest.raises(PolicyRuleError, match="does not compile"):
        validate_policy(_policy(expression="change.replicas >"))


def test_a_rule_that_cannot_run_is_refused_at_import() -> None:
    with pytest.raises(PolicyRuleError, match="could not be evaluated"):
        validate_policy(_policy(expression="change.no_such_field == 1"))
    with pytest.raises(PolicyRuleError, match="not bool"):
        validate_policy(_policy(expression="change.name"))


def test_a_rule_failing_at_evaluation_fails_closed() -> None:
    policy = _policy(match="change.verb == 'scale'", expression="change.labels['team'] == 'a'")
    (check,) = evaluate_policies([policy], [cmd("scale", "deployment/api", "--replicas=3")])
    assert not check.passed and "could not be evaluated" in check.message


def test_cel_is_data_never_python() -> None:
    policy = _policy(expression="__import__('os').system('true') == 0")
    with pytest.raises(PolicyRuleError):
        validate_policy(policy)
