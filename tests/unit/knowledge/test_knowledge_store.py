"""The knowledge store: idempotent imports, model mismatches that name the fix, reindex, local-mode sharing."""

from __future__ import annotations

import textwrap

import pytest
import yaml

from operate_mcp.config import Settings
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.knowledge.embeddings import bundled_model_path
from operate_mcp.knowledge.manage import manage_knowledge
from operate_mcp.knowledge.models import KnowledgeError, load_yaml_items, parse_item, starter_dir
from operate_mcp.knowledge.store import IndexMismatch, KnowledgeStore

PATTERN = textwrap.dedent("""\
    kind: pattern
    id: blue-green
    name: Blue-green switch
    description: Run the new version beside the old one and switch the Service selector.
    triggers: [blue green, switch traffic]
    recommendation:
      summary: Create a second Deployment with the new version, then patch the Service selector.
    rationale: The switch is instant and so is the way back.
    """)


@pytest.fixture
def kb(tmp_path) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=tmp_path))


def test_the_starter_set_ships_in_the_package() -> None:
    items = load_yaml_items(starter_dir())
    ids = {i.id for i in items}
    assert {"zero-downtime-rolling-update", "hpa-autoscaling", "keda-autoscaling", "database-ha",
            "pdb-for-ha-services", "resource-requests-before-autoscaling"} <= ids
    assert {"production-approval", "scaling-constraints", "no-latest-tag", "no-namespace-deletion"} <= ids
    keda = next(i for i in items if i.id == "keda-autoscaling")
    assert getattr(keda, "requires_capability", None) == "keda"


def test_first_use_seeds_the_starter_set_into_local_qdrant(kb, tmp_path) -> None:
    assert {i.id for i in kb.items("policy")} >= {"no-latest-tag", "scaling-constraints"}
    assert (tmp_path / "qdrant").is_dir()
    info = kb.store.index_info("pattern")
    assert info is not None and info["model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["size"] == 384


def test_import_is_idempotent_by_id(kb, tmp_path) -> None:
    path = tmp_path / "bg.yaml"
    path.write_text(PATTERN)
    first = kb.import_path(path)
    assert first.created == ["pattern/blue-green"]
    again = kb.import_path(path)
    assert again.created == [] and again.updated == [] and again.unchanged == ["pattern/blue-green"]
    path.write_text(PATTERN.replace("Blue-green switch", "Blue-green deployment"))
    changed = kb.import_path(path)
    assert changed.updated == ["pattern/blue-green"]
    assert [i.name for i in kb.items("pattern") if i.id == "blue-green"] == ["Blue-green deployment"]
    assert kb.search("pattern", "switch traffic between blue and green", k=1)[0].item.id == "blue-green"
    starter = kb.import_starter()
    assert starter.created == [] and starter.updated == [] and len(starter.unchanged) >= 10


def test_an_invalid_policy_is_refused_before_anything_is_written(kb) -> None:
    bad = parse_item({"kind": "policy", "id": "bad", "name": "Bad", "description": "d",
                      "rules": [{"expression": "change.replicas >"}]})
    good = parse_item(yaml.safe_load(PATTERN))
    with pytest.raises(KnowledgeError, match="does not compile"):
        kb.import_items([good, bad])
    assert kb.get("pattern", "blue-green") is None


def test_yaml_errors_name_the_file_and_field(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("kind: pattern\nid: x\nname: X\n")
    with pytest.raises(KnowledgeError, match=r"broken.yaml#1: not a valid pattern: description: Field required"):
        load_yaml_items(path)


def test_manage_knowledge_create_get_delete_search(kb) -> None:
    created = manage_knowledge(kb, "create", "pattern", yaml_text=PATTERN)
    assert created.report is not None and created.report.created == ["pattern/blue-green"]
    with pytest.raises(KnowledgeError, match="already exists"):
        manage_knowledge(kb, "create", "pattern", yaml_text=PATTERN)
    got = manage_knowledge(kb, "get", "pattern", item_id="blue-green")
    assert got.items[0]["name"] == "Blue-green switch"
    hits = manage_knowledge(kb, "search", "pattern", query="switch traffic blue green", k=2).hits
    assert hits[0].id == "blue-green" and hits[0].keyword_score == 1.0
    assert manage_knowledge(kb, "delete", "pattern", item_id="blue-green").deleted is True
    assert manage_knowledge(kb, "delete", "pattern", item_id="blue-green").deleted is False
    with pytest.raises(KnowledgeError, match="no pattern with id"):
        manage_knowledge(kb, "get", "pattern", item_id="blue-green")
    with pytest.raises(KnowledgeError, match="written by `scan` only"):
        manage_knowledge(kb, "delete", "capability", item_id="keda")


def test_a_model_mismatch_is_an_error_that_names_reindex_and_deletes_nothing(kb, tmp_path) -> None:
    kb.import_path(starter_dir())
    before = {i.id for i in kb.items("pattern")}
    model_dir = tmp_path / "my-model"
    model_dir.symlink_to(bundled_model_path(), target_is_directory=True)
    other = KnowledgeBase(Settings(data_dir=tmp_path, embedding_model=str(model_dir)))
    with pytest.raises(IndexMismatch, match="operate-mcp knowledge reindex") as err:
        other.context_for("enable autoscaling for api")
    assert "sentence-transformers/all-MiniLM-L6-v2" in str(err.value)
    assert {i.id for i in kb.items("pattern")} == before

    report = other.reindex()
    assert report.counts["pattern"] == len(before) and report.dimension == 384
    assert (tmp_path / "backups").is_dir() and report.backup.endswith(".json")
    assert other.context_for("enable autoscaling for api").patterns[0].item.id == "hpa-autoscaling"
    fresh = KnowledgeBase(Settings(data_dir=tmp_path))  # the default model again: now it is the mismatch
    with pytest.raises(IndexMismatch):
        fresh.search("pattern", "autoscaling")


def test_two_processes_worth_of_stores_take_turns_on_local_mode(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path)
    a, b = KnowledgeStore(settings), KnowledgeStore(settings)
    with a.client():
        pass
    with b.client():
        assert not b.exists("pattern")
    with a.client(), a.client():  # nested use shares one client
        assert a.all("pattern") == []


def test_policies_are_enforced_even_before_the_store_exists(tmp_path) -> None:
    from operate_mcp.model.command import ProposedCommand

    kb = KnowledgeBase(Settings(data_dir=tmp_path))
    checks = kb.check_policies([ProposedCommand(argv=["kubectl", "delete", "namespace", "shop"], description="x")])
    assert any(c.policy_id == "no-namespace-deletion" and not c.passed for c in checks)
    assert not (tmp_path / "qdrant" / "collection").exists()
