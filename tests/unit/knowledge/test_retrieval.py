"""Retrieval over the shipped starter set with the real embedding model (all-MiniLM-L6-v2)."""

from __future__ import annotations

import pytest

from operate_mcp.config import Settings
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.knowledge.models import Capability
from operate_mcp.knowledge.retrieval import Hit, RetrievedContext, keyword_score, tokens

# (intent, the pattern a person would expect to see); phrased the way people ask, many without trigger words.
LABELLED_INTENTS = [
    ("update the checkout image to v2.3.1 without downtime", "zero-downtime-rolling-update"),
    ("deploy version 1.8 of the payments service", "zero-downtime-rolling-update"),
    ("upgrade nginx on the web deployment to 1.27", "zero-downtime-rolling-update"),
    ("ship the new release of frontend", "zero-downtime-rolling-update"),
    ("change the container image of api to registry.example.com/api:4.2", "zero-downtime-rolling-update"),
    ("enable autoscaling for api", "hpa-autoscaling"),
    ("add an HPA to the orders service targeting 70% cpu", "hpa-autoscaling"),
    ("scale the web deployment automatically when CPU is high", "hpa-autoscaling"),
    ("api should grow and shrink with traffic", "hpa-autoscaling"),
    ("handle traffic spikes on the storefront", "hpa-autoscaling"),
    ("scale the worker on rabbitmq queue length", "keda-autoscaling"),
    ("scale consumers based on kafka consumer lag", "keda-autoscaling"),
    ("let the batch processor scale to zero when idle", "keda-autoscaling"),
    ("create a KEDA ScaledObject for the mailer", "keda-autoscaling"),
    ("scale the reports job on a cron schedule during business hours", "keda-autoscaling"),
    ("make postgres HA", "database-ha"),
    ("our mysql database must survive a node failure", "database-ha"),
    ("add replicas and failover to the redis cache", "database-ha"),
    ("set up a highly available PostgreSQL cluster with backups", "database-ha"),
    ("the orders database is a single pod, make it resilient", "database-ha"),
    ("protect api during node drains", "pdb-for-ha-services"),
    ("add a pod disruption budget for checkout", "pdb-for-ha-services"),
    ("keep the search service available during the cluster upgrade", "pdb-for-ha-services"),
    ("make sure node maintenance doesn't take down all frontend pods at once", "pdb-for-ha-services"),
    ("set cpu and memory requests on the api containers", "resource-requests-before-autoscaling"),
    ("the worker keeps getting OOMKilled, fix its memory limit", "resource-requests-before-autoscaling"),
    ("right-size the resources of the billing deployment", "resource-requests-before-autoscaling"),
    ("checkout is cpu throttled, adjust its limits", "resource-requests-before-autoscaling"),
    ("roll back checkout", "rollback-deployment"),
    ("the last deploy of payments broke login, revert it", "rollback-deployment"),
    ("undo the latest rollout of frontend", "rollback-deployment"),
    ("go back to the previous version of api", "rollback-deployment"),
    ("back up the shop namespace every night", "velero-backups"),
    ("take a snapshot of everything in billing before the migration", "velero-backups"),
    ("set up disaster recovery for the orders namespace", "velero-backups"),
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    base = KnowledgeBase(Settings(data_dir=tmp_path_factory.mktemp("knowledge")))
    base.ready()
    return base


def test_top3_hit_rate_over_labelled_intents_is_at_least_90_percent(kb: KnowledgeBase) -> None:
    assert len(LABELLED_INTENTS) >= 30
    misses = []
    vector_only_hits = 0
    for intent, expected in LABELLED_INTENTS:
        ranked = kb.search("pattern", intent, k=50)
        top = [h.item.id for h in ranked[:3]]
        vector_only_hits += expected in [h.item.id for h in sorted(ranked, key=lambda h: -h.vector)[:3]]
        if expected not in top:
            misses.append(f"  MISS {intent!r}: expected {expected}, got {top}")
    n = len(LABELLED_INTENTS)
    rate = 1 - len(misses) / n
    print(f"\npattern retrieval top-3 hit rate: {rate:.3f} ({n - len(misses)}/{n} labelled intents; "
          f"vector similarity alone: {vector_only_hits / n:.3f})")
    print("\n".join(misses))
    assert rate >= 0.9, "\n".join(misses)


def test_keywords_match_whole_trigger_phrases_in_any_order() -> None:
    assert tokens("Autoscaling the pods") == ["autoscal", "pod"]
    assert keyword_score("scale to zero the mailer", ["scale to zero"]) == 1.0
    assert keyword_score("we need a disruption budget for pods", ["pod disruption budget"]) == 1.0
    assert 0 < keyword_score("a budget for the api", ["pod disruption budget"]) < 1.0
    assert keyword_score("restart api", ["pod disruption budget", "pdb"]) == 0.0


def test_context_lists_policies_patterns_and_marks_unscanned_capabilities(kb: KnowledgeBase) -> None:
    ctx = kb.context_for("enable autoscaling for api")
    text = ctx.render()
    refs = {(r.kind, r.id) for r in ctx.refs()}
    assert ("pattern", "hpa-autoscaling") in refs
    assert ("pattern", "keda-autoscaling") in refs  # never scanned: shown, marked as needing a check
    assert "Requires capability `keda`: the cluster was not scanned" in text
    assert "never scanned" in text
    for policy in ("scaling-constraints", "no-latest-tag", "no-namespace-deletion", "production-approval"):
        assert ("policy", policy) in refs and f"[{policy}]" in text
    assert all(r.score >= 0 for r in ctx.refs())


def _keda() -> Capability:
    return Capability(id="keda", name="KEDA", category="autoscaling", description="Event-driven autoscaling.",
                      enables=["ScaledObject"], groups=["keda.sh"], resources=["scaledobjects.keda.sh"])


def _velero() -> Capability:
    return Capability(id="velero", name="Velero", category="backup", description="Backups of namespaces.",
                      enables=["Backup", "Schedule"], groups=["velero.io"], resources=["backups.velero.io"])


def test_patterns_needing_a_missing_capability_are_left_out_and_said_so(tmp_path) -> None:
    base = KnowledgeBase(Settings(data_dir=tmp_path))
    base.ready()
    base.put([_velero()])  # a scanned cluster with Velero but without KEDA
    base.store.annotate("capability", last_scan="2026-01-01T00:00:00+00:00")
    ctx = base.context_for("scale the worker on rabbitmq queue length")
    ids = [r.id for r in ctx.refs() if r.kind == "pattern"]
    assert "keda-autoscaling" not in ids
    assert "Not applicable here: Event-driven autoscaling with KEDA" in ctx.render()
    assert "velero" in [r.id for r in ctx.refs() if r.kind == "capability"]

    base.put([_keda()])
    ctx = base.context_for("scale the worker on rabbitmq queue length")
    assert next(r.id for r in ctx.refs() if r.kind == "pattern") == "keda-autoscaling"
    assert "[capability keda]" in ctx.render()


def test_context_is_capped_without_cutting_an_item_in_half(kb: KnowledgeBase) -> None:
    full = kb.context_for("make postgres HA")
    small = RetrievedContext(intent=full.intent, patterns=full.patterns, policies=full.policies,
                             capabilities=full.capabilities, scanned=full.scanned, max_chars=1200)
    text = small.render()
    assert len(text) <= 1200
    assert len(full.render()) > len(text)
    shown = [r.id for r in small.refs() if r.kind == "pattern"]
    assert shown and shown[0] == "database-ha"  # the best pattern survives, shortened if need be
    assert "### Highly available database [pattern database-ha]" in text


def test_secrets_never_reach_the_context(tmp_path) -> None:
    from operate_mcp.knowledge.models import parse_item

    base = KnowledgeBase(Settings(data_dir=tmp_path))
    leaky = parse_item({
        "kind": "pattern", "id": "leaky", "name": "Rotate the api token", "description": "rotate the api token",
        "triggers": ["rotate token"], "rationale": "x",
        "recommendation": {"summary": "set password: hunter2hunter2 in the secret", "resources": []},
    })
    base.import_items([leaky])
    text = base.context_for("rotate the api token").render()
    assert "Rotate the api token" in text
    assert "hunter2hunter2" not in text


def test_hits_carry_their_score_parts(kb: KnowledgeBase) -> None:
    hits: list[Hit] = kb.search("pattern", "add a pod disruption budget for checkout", k=3)
    assert hits[0].item.id == "pdb-for-ha-services"
    assert hits[0].keyword == 1.0 and 0 < hits[0].vector <= 1
    assert hits == sorted(hits, key=lambda h: -h.score)
