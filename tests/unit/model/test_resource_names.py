"""One table of resource names (model/resources.py): the classifier, the policy changes and run search agree.

Every spelling kubectl takes for a resource (plural, singular, short name, with a built-in group or
version) names the same resource for a policy rule, for the classifier's verdict and for a search
query. The last tests are regressions of the three tables this one replaced: a manifest's Ingress
was `ingresss` to policies, a `kubectl delete netpol x` had the kind `netpol`, and `resource:netpol/x`
found nothing in run search.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.knowledge.changes import changes_of
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.resources import RESOURCES, canonical_resource, kind_of, resource_of_kind, singular
from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.store import RecordStore

SPELLINGS = [(r, spelling) for r in RESOURCES for spelling in r.spellings]


def cmd(*argv: str, stdin: str | None = None) -> ProposedCommand:
    return ProposedCommand(argv=list(argv), stdin=stdin, description="test")


@pytest.mark.parametrize(("resource", "spelling"), SPELLINGS, ids=[s for _, s in SPELLINGS])
def test_every_spelling_in_the_table_names_its_plural_for_the_classifier(resource, spelling) -> None:
    parsed = parse_kubectl(["kubectl", "get", spelling, "x"])
    assert parsed.resource_types == [resource.plural]
    assert canonical_resource(spelling.upper()) == resource.plural


@pytest.mark.parametrize(("resource", "spelling"), SPELLINGS, ids=[s for _, s in SPELLINGS])
def test_every_spelling_gives_policies_the_plural_and_the_kind(resource, spelling) -> None:
    [change] = changes_of([cmd("kubectl", "delete", spelling, "x")])
    assert (change["resource"], change["kind"]) == (resource.plural, resource.kind)


@pytest.mark.parametrize(("resource", "spelling"), SPELLINGS, ids=[s for _, s in SPELLINGS])
def test_every_spelling_searches_for_the_kind_records_store(resource, spelling) -> None:
    assert singular(spelling) == resource.kind.lower()


def test_a_built_in_group_or_version_is_dropped_and_a_custom_one_kept() -> None:
    assert canonical_resource("deployments.apps") == "deployments"
    assert canonical_resource("deployment.v1.apps") == "deployments"
    assert canonical_resource("netpol.networking.k8s.io") == "networkpolicies"
    assert canonical_resource("widgets.v1beta1.example.com") == "widgets.example.com"
    assert canonical_resource("widget") == "widget"  # a custom short name stays as written


def test_a_manifest_kind_becomes_the_resource_kubectl_would_name() -> None:
    assert resource_of_kind("Deployment", "apps") == "deployments"
    assert resource_of_kind("Ingress", "networking.k8s.io") == "ingresses"
    assert resource_of_kind("Endpoints") == "endpoints"
    assert resource_of_kind("Widget", "example.com") == "widgets.example.com"  # CRDs: the usual plural
    assert kind_of("networkpolicies") == "NetworkPolicy"
    assert kind_of("widgets.example.com") is None


def test_unknown_spellings_search_as_written_in_lower_case() -> None:
    assert singular("Widget") == "widget"
    assert singular("deployments.apps") == "deployments.apps"


@pytest.mark.parametrize(
    ("kind", "api_version", "plural"),
    [
        ("Ingress", "networking.k8s.io/v1", "ingresses"),
        ("NetworkPolicy", "networking.k8s.io/v1", "networkpolicies"),
        ("Endpoints", "v1", "endpoints"),
        ("PriorityClass", "scheduling.k8s.io/v1", "priorityclasses"),
    ],
)
def test_a_manifest_object_and_the_command_line_name_the_same_resource_for_policies(kind, api_version, plural) -> None:
    manifest = f"apiVersion: {api_version}\nkind: {kind}\nmetadata:\n  name: x\n"
    [from_manifest] = changes_of([cmd("kubectl", "apply", "-f", "-", stdin=manifest)])
    [from_line] = changes_of([cmd("kubectl", "delete", plural, "x")])
    assert from_manifest["resource"] == from_line["resource"] == plural
    assert from_manifest["kind"] == from_line["kind"] == kind


def test_a_short_name_on_the_command_line_gives_policies_the_real_kind() -> None:
    [change] = changes_of([cmd("kubectl", "delete", "netpol", "deny-all", "-n", "shop")])
    assert change["kind"] == "NetworkPolicy"


def _run(n: int, resources: list[str]) -> ExecutionRecord:
    started = datetime(2026, 1, 1, 10, 0, tzinfo=UTC) + timedelta(days=n)
    return ExecutionRecord.model_validate(
        {
            "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}",
            "started_at": started,
            "finished_at": started + timedelta(seconds=10),
            "triggered_by": "cli",
            "caller": "alice",
            "intent": "change things",
            "status": RunStatus.SUCCEEDED,
            "duration_seconds": 10.0,
            "resources": resources,
        }
    )


@pytest.mark.parametrize(
    "query",
    ["resource:networkpolicy/deny-all", "resource:networkpolicies/deny-all", "resource:netpol/deny-all"],
)
def test_search_finds_a_run_by_any_spelling_of_its_resource(tmp_path: Path, query: str) -> None:
    with RecordStore(tmp_path) as store:
        store.save_many([_run(1, ["networkpolicy/deny-all"]), _run(2, ["deployment/deny-all"])])
        assert [r.id for r in store.search(query).items] == [_run(1, []).id]
