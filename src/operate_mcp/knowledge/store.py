"""The Qdrant side of knowledge: one collection per kind, payload = the item, vector = its embedding.

Local mode (a directory under the data dir) by default; OPERATE_MCP_QDRANT_URL switches to a server
with the same code. Local mode locks its directory per client, so the store opens it for each
operation and closes it after: the MCP server and the CLI can then take turns on the same data.
Each collection records the embedding model it was built with; a mismatch is an error that names
`operate-mcp knowledge reindex`, never a silent delete.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from operate_mcp.config import Settings
from operate_mcp.knowledge.models import KINDS, PLURAL, KindName, KnowledgeError, KnowledgeItem, parse_item

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

COLLECTION_PREFIX = "operate_"
_ID_NAMESPACE = uuid.UUID("0f6d3c52-3a8e-4f5e-9a7c-6f0e4b1d2c11")
LOCK_WAIT_SECONDS = 10.0


class IndexMismatch(KnowledgeError):
    """The stored vectors were made by another model (or another size) than the configured one."""


def collection_name(kind: KindName) -> str:
    return f"{COLLECTION_PREFIX}{PLURAL[kind]}"


# Names written by versions before 0.2 ("capabilitys"); moved to the right name when first opened.
OLD_NAMES: dict[str, KindName] = {f"{COLLECTION_PREFIX}capabilitys": "capability"}


def point_id(kind: KindName, item_id: str) -> str:
    """Stable point id from kind and item id: importing the same id again replaces, never duplicates."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{kind}:{item_id}"))


@dataclass(frozen=True)
class StoredItem:
    item: KnowledgeItem
    digest: str
    updated_at: str


@dataclass(frozen=True)
class ScoredItem:
    item: KnowledgeItem
    score: float


class KnowledgeStore:
    """Items by kind in Qdrant; vectors are computed by the caller, so this module never loads a model."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.qdrant_url
        self.api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        self.path = Path(settings.data_dir) / "qdrant"
        self._client: QdrantClient | None = None
        self._depth = 0
        self._lock = threading.RLock()

    @property
    def location(self) -> str:
        return self.url or str(self.path)

    # ------------------------------------------------------------------ connection

    def _open(self) -> QdrantClient:
        from qdrant_client import QdrantClient

        if self.url:
            return QdrantClient(url=self.url, api_key=self.api_key, timeout=30)
        self.path.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + LOCK_WAIT_SECONDS
        while True:
            try:
                return QdrantClient(path=str(self.path))
            except RuntimeError as exc:
                if "already accessed" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise KnowledgeError(
                        f"the local knowledge store {self.path} is in use by another operate-mcp process; "
                        "retry when it is done, or share a Qdrant server (OPERATE_MCP_QDRANT_URL)"
                    ) from exc
                time.sleep(0.1)

    @contextlib.contextmanager
    def client(self) -> Iterator[QdrantClient]:
        """A connected client; nested uses share it; local mode releases its lock when the outermost ends."""
        with self._lock:
            if self._client is None:
                self._client = self._open()
                _rename_old_collections(self._client)
            self._depth += 1
            try:
                yield self._client
            finally:
                self._depth -= 1
                if self._depth == 0 and not self.url:
                    self._client.close()
                    self._client = None

    def close(self) -> None:
        with self._lock:
            if self._client is not None and self._depth == 0:
                self._client.close()
                self._client = None

    # ------------------------------------------------------------------ collections

    def exists(self, kind: KindName) -> bool:
        with self.client() as c:
            return bool(c.collection_exists(collection_name(kind)))

    def index_info(self, kind: KindName) -> dict[str, Any] | None:
        """The model and vector size a collection was built with, or None if it does not exist."""
        with self.client() as c:
            name = collection_name(kind)
            if not c.collection_exists(name):
                return None
            config = c.get_collection(name).config
            vectors = config.params.vectors
            size = getattr(vectors, "size", None)
            meta = dict(config.metadata or {})
            return {**meta, "collection": name, "model": meta.get("model"), "size": size}

    def annotate(self, kind: KindName, **values: str) -> None:
        """Merge values into a collection's metadata (e.g. when the capabilities were last scanned)."""
        with self.client() as c:
            c.update_collection(collection_name(kind), metadata=dict(values))

    def check_index(self, kind: KindName, model_id: str, size: int | None = None) -> bool:
        """True if the collection exists and matches; raises IndexMismatch if it exists and does not."""
        info = self.index_info(kind)
        if info is None:
            return False
        problems = []
        if info["model"] != model_id:
            problems.append(f"built with embedding model {info['model']!r}, configured is {model_id!r}")
        if size is not None and info["size"] != size:
            problems.append(f"vectors have {info['size']} dimensions, the model makes {size}")
        if problems:
            raise IndexMismatch(
                f"knowledge collection {info['collection']} at {self.location}: {'; '.join(problems)}. "
                "Run `operate-mcp knowledge reindex` to re-embed the stored items with the configured model "
                "(nothing is deleted until they are re-embedded), or set OPERATE_MCP_EMBEDDING_MODEL back."
            )
        return True

    def ensure(self, kind: KindName, model_id: str, size: int) -> None:
        """Create the collection for `kind` if missing; verify it otherwise."""
        if self.check_index(kind, model_id, size):
            return
        from qdrant_client import models

        with self.client() as c:
            c.create_collection(
                collection_name(kind),
                vectors_config=models.VectorParams(size=size, distance=models.Distance.COSINE),
                metadata={"model": model_id, "created_at": datetime.now(UTC).isoformat(timespec="seconds")},
            )

    # ------------------------------------------------------------------ items

    def upsert(self, items: Sequence[KnowledgeItem], vectors: Sequence[Sequence[float]]) -> None:
        from qdrant_client import models

        if len(items) != len(vectors):
            raise ValueError("one vector per item")
        by_kind: dict[str, list[models.PointStruct]] = {}
        now = datetime.now(UTC).isoformat(timespec="seconds")
        for item, vector in zip(items, vectors, strict=True):
            payload = {
                "item": item.model_dump(mode="json", by_alias=True),
                "id": item.id,
                "digest": item.digest(),
                "updated_at": now,
            }
            by_kind.setdefault(item.kind, []).append(
                models.PointStruct(id=point_id(item.kind, item.id), vector=list(vector), payload=payload)
            )
        with self.client() as c:
            for kind, points in by_kind.items():
                c.upsert(collection_name(kind), points=points, wait=True)  # type: ignore[arg-type]

    def all(self, kind: KindName) -> list[StoredItem]:
        """Every item of a kind, sorted by id; needs no model."""
        with self.client() as c:
            name = collection_name(kind)
            if not c.collection_exists(name):
                return []
            found: list[StoredItem] = []
            offset: Any = None
            while True:
                points, offset = c.scroll(name, limit=256, offset=offset, with_payload=True, with_vectors=False)
                found += [self._stored(p.payload or {}, kind) for p in points]
                if offset is None:
                    break
        return sorted(found, key=lambda s: s.item.id)

    def get(self, kind: KindName, item_id: str) -> StoredItem | None:
        with self.client() as c:
            name = collection_name(kind)
            if not c.collection_exists(name):
                return None
            points = c.retrieve(name, ids=[point_id(kind, item_id)], with_payload=True)
            return self._stored(points[0].payload or {}, kind) if points else None

    def delete(self, kind: KindName, item_ids: Sequence[str]) -> None:
        from qdrant_client import models

        if not item_ids:
            return
        with self.client() as c:
            name = collection_name(kind)
            if c.collection_exists(name):
                c.delete(
                    name,
                    points_selector=models.PointIdsList(points=[point_id(kind, i) for i in item_ids]),
                    wait=True,
                )

    def search(self, kind: KindName, vector: Sequence[float], limit: int) -> list[ScoredItem]:
        with self.client() as c:
            name = collection_name(kind)
            if not c.collection_exists(name):
                return []
            points = c.query_points(name, query=list(vector), limit=limit, with_payload=True).points
        return [ScoredItem(self._stored(p.payload or {}, kind).item, float(p.score)) for p in points]

    def drop(self, kind: KindName) -> None:
        with self.client() as c:
            name = collection_name(kind)
            if c.collection_exists(name):
                c.delete_collection(name)

    def backup(self, directory: Path) -> Path:
        """Every stored item as JSON, written before anything destructive such as a reindex."""
        directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = directory / f"knowledge-{stamp}.json"
        data = {k: [s.item.model_dump(mode="json", by_alias=True) for s in self.all(k)] for k in KINDS}
        target.write_text(json.dumps(data, indent=1))
        return target

    @staticmethod
    def _stored(payload: dict[str, Any], kind: KindName) -> StoredItem:
        return StoredItem(
            item=parse_item(payload.get("item"), kind, source=f"stored {kind} {payload.get('id')}"),
            digest=str(payload.get("digest", "")),
            updated_at=str(payload.get("updated_at", "")),
        )


def _rename_old_collections(c: QdrantClient) -> None:
    """Copy a collection stored under an old, misspelt name to its right name, then drop the old one.

    Qdrant has no rename; the points (payload and vectors) and the collection's metadata are copied.
    """
    for old, kind in OLD_NAMES.items():
        new = collection_name(kind)
        if not c.collection_exists(old) or c.collection_exists(new):
            continue
        config = c.get_collection(old).config
        c.create_collection(new, vectors_config=config.params.vectors, metadata=dict(config.metadata or {}))
        offset = None
        while True:
            points, offset = c.scroll(old, limit=256, offset=offset, with_payload=True, with_vectors=True)
            if points:
                c.upsert(new, points=[_as_point(p) for p in points], wait=True)
            if offset is None:
                break
        c.delete_collection(old)


def _as_point(record: Any) -> Any:
    from qdrant_client.models import PointStruct  # lazy: qdrant is loaded only when knowledge is used

    return PointStruct(id=record.id, vector=record.vector, payload=record.payload)
