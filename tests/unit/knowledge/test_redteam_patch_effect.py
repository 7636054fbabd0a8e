"""Red team: policies judge a `kubectl patch` by what kubectl sends, or see an unknown change and fail closed.

kubectl sends a `-p` that starts with `{` as written (the API server reads JSON); anything else it converts
from YAML with go-yaml v2, whose merge keys (`<<`, also `!!merge "\\x3c\\x3c"`) overwrite the keys written
before them where PyYAML keeps the written key. Numbers reach the server as JSON numbers: `1e3` is 1000 and
`0.0` is 0, and a replica count set to null or removed falls back to its default (1). All of this was
checked with kubectl 1.34 against the test bed's API server (`--dry-run=server`, and `patch --local`), and
tests/integration/test_redteam_remediate.py runs the merge-key patch as replicas 0 and image evil:latest.
"""

from __future__ import annotations

import json

import pytest

from operate_mcp.knowledge.changes import changes_of
from operate_mcp.knowledge.models import Policy, load_yaml_items, parse_item, starter_dir
from operate_mcp.knowledge.policies import evaluate_policies
from operate_mcp.model.command import ProposedCommand

# What PyYAML reads as one pod-template annotation; kubectl lets the merged `spec` win: replicas 0, evil:latest.
MERGE_KEY_PATCH = (
    "!!map {spec: {template: {metadata: {annotations: {a: b}}}}, "
    '!!merge "\\x3c\\x3c": {spec: {replicas: 0, template: {spec: {containers: [{name: web, image: "evil:latest"}]}}}}}'
)


def _policy(pid: str, match: str, expression: str) -> Policy:
    item = parse_item({"kind": "policy", "id": pid, "name": pid, "description": pid, "effect": "block",
                       "rules": [{"match": match, "expression": expression, "message": f"violates {pid}"}]})
    assert isinstance(item, Policy)
    return item


NO_SCALE_TO_ZERO = _policy("no-scale-to-zero-in-shop", 'change.namespace == "shop"',
                           "change.replicas == null || change.replicas > 0")
OUR_REGISTRY = _policy("images-from-our-registry", "size(change.images) > 0",
                       'change.images.all(i, i.name.startsWith("registry.example/"))')


@pytest.fixture(scope="module")
def starter() -> list[Policy]:
    return [p for p in load_yaml_items(starter_dir() / "policies") if isinstance(p, Policy)]


def patch(body: str, *flags: str) -> ProposedCommand:
    return ProposedCommand(argv=["kubectl", "patch", "deployment", "web", "-n", "shop", *flags, "-p", body],
                           description="test")


def check(policy: Policy, command: ProposedCommand):
    (result,) = evaluate_policies([policy], [command])
    return result


def the_change(command: ProposedCommand) -> dict:
    (change,) = changes_of([command])
    return change


# ------------------------------------------------------------------ what kubectl reads otherwise is unknown


def test_the_merge_key_patch_is_an_unknown_change_not_an_annotation() -> None:
    change = the_change(patch(MERGE_KEY_PATCH))
    assert change["parse_error"] and change["patch"] is None
    assert change["replicas"] is None and change["images"] == []


@pytest.mark.parametrize("policy", [NO_SCALE_TO_ZERO, OUR_REGISTRY])
def test_the_merge_key_patch_does_not_pass_a_policy_it_may_break(policy) -> None:
    result = check(policy, patch(MERGE_KEY_PATCH))
    assert not result.passed and result.effect == "block"
    assert "cannot be read" in result.message and "command 1 (patch deployments/web in shop)" in result.message


@pytest.mark.parametrize(
    "body",
    [
        MERGE_KEY_PATCH,
        "<<: {spec: {replicas: 0}}\nspec: {template: {metadata: {annotations: {a: b}}}}",  # a plain merge key
        "spec: {template: {metadata: {annotations: {a: b}}}}\n<<: {spec: {replicas: 0}}",
        "x: &zero {replicas: 0}\nspec: *zero",  # an alias repeats content out of sight
        "!!map {spec: {replicas: 0}}",  # a tag
        "--- {spec: {replicas: 0}}",  # kubectl's and PyYAML's document markers differ
        "spec: {replicas: 3}\n---\nspec: {replicas: 0}",  # two documents: go-yaml reads the first only
        '{"spec":{"replicas":3},"spec":{"replicas":0}}',  # duplicate keys: the decoder's choice
        '{"spec":{"replicas":3,"replicas":0}}',
        "spec: {replicas: 3, replicas: 0}",
        '{"spec":{"replicas":NaN}}',  # not JSON, though Python reads it
        "{spec: {replicas: 0}}",  # starts with `{`: sent as written, and it is not JSON
        "[not, a, patch",
    ],
)
def test_a_patch_we_cannot_read_exactly_as_kubectl_fails_every_policy_closed(body) -> None:
    assert the_change(patch(body))["parse_error"]
    for policy in (NO_SCALE_TO_ZERO, OUR_REGISTRY):
        assert not check(policy, patch(body)).passed


def test_an_unknown_change_fails_even_a_policy_whose_rule_would_not_apply(starter) -> None:
    checks = evaluate_policies(starter, [patch(MERGE_KEY_PATCH)])
    assert {c.policy_id for c in checks if not c.passed} == {p.id for p in starter}


# ------------------------------------------------------------------ numbers as the API server reads them


@pytest.mark.parametrize(
    ("body", "flags"),
    [
        ('{"spec":{"replicas":0.0}}', ()),
        ('{"spec":{"replicas":0e0}}', ()),
        ("spec: {replicas: 0.0}", ()),
        ('[{"op":"replace","path":"/spec/replicas","value":0.0}]', ("--type=json",)),
        ('[{"op":"replace","path":"/spec","value":{"replicas":0}}]', ("--type=json",)),
        ('[{"op":"add","path":"","value":{"spec":{"replicas":0}}}]', ("--type", "json")),
    ],
)
def test_scale_to_zero_is_seen_however_the_zero_is_written(body, flags) -> None:
    command = patch(body, *flags)
    assert the_change(command)["replicas"] == 0
    assert not check(NO_SCALE_TO_ZERO, command).passed


@pytest.mark.parametrize(
    ("body", "flags"),
    [
        ('{"spec":{"replicas":1e3}}', ()),
        ('{"spec":{"replicas":1000.0}}', ()),
        ("spec: {replicas: 1e3}", ()),
        ('[{"op":"replace","path":"/spec/replicas","value":1e3}]', ("--type=json",)),
        ('[{"op":"replace","path":"/spec/replicas","value":1E+3}]', ("--type=JSON",)),
    ],
)
def test_a_thousand_replicas_in_float_spelling_is_blocked(starter, body, flags) -> None:
    (result,) = [c for c in evaluate_policies(starter, [patch(body, *flags)]) if c.policy_id == "scaling-constraints"]
    assert not result.passed and "replicas 1000 exceeds the maximum of 100" in result.message


@pytest.mark.parametrize(
    ("body", "flags"),
    [
        ('{"spec":{"replicas":null}}', ()),  # the API server resets it to 1
        ("spec: {replicas: ~}", ()),
        ('[{"op":"remove","path":"/spec/replicas"}]', ("--type=json",)),
        ('[{"op":"replace","path":"/spec/replicas","value":null}]', ("--type=json",)),
        ('{"spec":{"replicas":2.5}}', ()),
        ('{"spec":{"$patch":"replace","template":{"metadata":{"annotations":{"a":"b"}}}}}', ()),
        ('{"$patch":"replace","spec":{"template":{"metadata":{"annotations":{"a":"b"}}}}}', ()),
        # copy and move take their value from the stored object: not ours to read
        ('[{"op":"copy","from":"/spec/progressDeadlineSeconds","path":"/spec/replicas"}]', ("--type=json",)),
        ('[{"op":"move","from":"/metadata/annotations/x","path":"/spec/template/spec/containers/0/image"}]',
         ("--type=json",)),
        ('[{"op":"frobnicate","path":"/spec/replicas","value":0}]', ("--type=json",)),
        ('[{"op":"replace","path":"spec/replicas","value":0}]', ("--type=json",)),
        ('{"spec":{"replicas":0}}', ("--type=json",)),  # a JSON patch is a list of operations
    ],
)
def test_a_replica_count_reset_or_unreadable_is_unknown_not_unchanged(body, flags) -> None:
    command = patch(body, *flags)
    assert the_change(command)["parse_error"]
    assert not check(NO_SCALE_TO_ZERO, command).passed


# ------------------------------------------------------------------ images wherever a JSON patch puts them


@pytest.mark.parametrize(
    "op",
    [
        {"op": "replace", "path": "/spec/template/spec/containers/0", "value": {"name": "web", "image": "evil:1"}},
        {"op": "add", "path": "/spec/template/spec/containers/-", "value": {"name": "side", "image": "evil:1"}},
        {"op": "replace", "path": "/spec/template/spec/containers", "value": [{"name": "web", "image": "evil:1"}]},
        {"op": "replace", "path": "/spec/template/spec", "value": {"containers": [{"name": "web", "image": "evil:1"}]}},
        {"op": "replace", "path": "/spec/template/spec/initContainers/0/image", "value": "evil:1"},
        {"op": "replace", "path": "", "value": {"spec": {"template": {"spec": {"containers": [{"image": "evil:1"}]}}}}},
    ],
)
def test_an_image_a_json_patch_sets_is_seen_at_any_depth(op) -> None:
    command = patch(json.dumps([op]), "--type=json")
    assert [i["ref"] for i in the_change(command)["images"]] == ["evil:1"]
    assert not check(OUR_REGISTRY, command).passed


# ------------------------------------------------------------------ held: ordinary patches are read and judged


@pytest.mark.parametrize(
    ("body", "flags", "replicas"),
    [
        ('{"spec":{"replicas":3}}', (), 3),
        (' \n{"spec":{"replicas":3}}', ("--type=merge",), 3),
        ("spec:\n  replicas: 3\n", (), 3),  # plain YAML, read the way go-yaml reads it
        ("spec: {replicas: 3}", ("--type", "strategic"), 3),
        ('[{"op":"replace","path":"/spec/replicas","value":3}]', ("--type=json",), 3),
        ('[{"op":"test","path":"/spec/replicas","value":3},{"op":"replace","path":"/spec/replicas","value":4}]',
         ("--type=json",), 4),
        ('{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-01-01"}}}}}',
         (), None),
    ],
)
def test_an_ordinary_patch_is_read_and_passes(body, flags, replicas) -> None:
    command = patch(body, *flags)
    change = the_change(command)
    assert change["parse_error"] == "" and change["replicas"] == replicas
    assert check(NO_SCALE_TO_ZERO, command).passed and check(OUR_REGISTRY, command).passed


def test_an_ordinary_image_patch_is_judged_by_its_image() -> None:
    ours = patch('{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"registry.example/web:2"}]}}}}')
    theirs = patch("spec: {template: {spec: {containers: [{name: web, image: 'docker.io/web:2'}]}}}")
    assert check(OUR_REGISTRY, ours).passed
    result = check(OUR_REGISTRY, theirs)
    assert not result.passed and "violates images-from-our-registry" in result.message
    assert "cannot be read" not in result.message
