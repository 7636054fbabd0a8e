"""Collections are named as the docs say (operate_capabilities), and a store written with the old,
misspelt name (operate_capabilitys) keeps its points when opened. Real Qdrant in local mode."""

from __future__ import annotations

from qdrant_client import QdrantClient
from qdrant_client.models import Distance, PointStruct, VectorParams

from operate_mcp.config import Settings
from operate_mcp.knowledge.store import KnowledgeStore, collection_name


def test_collections_are_spelt_as_documented():
    assert [collection_name(k) for k in ("pattern", "policy", "capability")] == [
        "operate_patterns",
        "operate_policies",
        "operate_capabilities",
    ]


def test_an_old_misspelt_collection_is_moved_with_its_points(tmp_path):
    settings = Settings(data_dir=tmp_path, knowledge_enabled=True)
    old = QdrantClient(path=str(tmp_path / "qdrant"))
    old.create_collection(
        "operate_capabilitys", vectors_config=VectorParams(size=4, distance=Distance.COSINE), metadata={"model": "m"}
    )
    old.upsert(
        "operate_capabilitys",
        points=[PointStruct(id=1, vector=[0.1, 0.2, 0.3, 0.4], payload={"id": "keda"})],
        wait=True,
    )
    old.close()
    store = KnowledgeStore(settings)
    with store.client() as c:
        assert not c.collection_exists("operate_capabilitys")
        [point], _ = c.scroll("operate_capabilities", with_payload=True, with_vectors=True)
        assert point.payload == {"id": "keda"} and len(point.vector) == 4
        assert (c.get_collection("operate_capabilities").config.metadata or {}).get("model") == "m"
