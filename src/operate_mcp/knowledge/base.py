"""The knowledge base the workflows use: retrieval for an intent, policy checks in code, and management.

Constructing it does no I/O and imports neither Qdrant nor the embedding model; the first call that
needs them pays for them. On first use an empty store is seeded with the shipped starter set.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from operate_mcp.config import Settings
from operate_mcp.knowledge.capabilities import ScanProgress, ScanReport, diff, discover, recognise
from operate_mcp.knowledge.embeddings import Embedder, make_embedder
from operate_mcp.knowledge.models import (
    KINDS,
    Capability,
    KindName,
    KnowledgeError,
    KnowledgeItem,
    Pattern,
    Policy,
    load_yaml_items,
    starter_dir,
)
from operate_mcp.knowledge.policies import evaluate_policies, observed_lookup, validate_policy
from operate_mcp.knowledge.retrieval import DEFAULT_MAX_CHARS, Hit, RetrievedContext, rank
from operate_mcp.knowledge.store import KnowledgeStore
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import Target, read_target
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject, PolicyCheck

CANDIDATES = 50
MIN_PATTERN_SCORE = 0.25
MIN_CAPABILITY_SCORE = 0.3


class ImportReport(BaseModel):
    created: list[str] = Field(default_factory=list)
    updated: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)


class ReindexReport(BaseModel):
    model: str
    dimension: int
    counts: dict[str, int]
    backup: str


class KnowledgeBase:
    """Implements the workflow's `Knowledge` protocol (context_for, check_policies) over a KnowledgeStore."""

    def __init__(
        self,
        settings: Settings,
        store: KnowledgeStore | None = None,
        embedder: Embedder | None = None,
        *,
        kubectl: Kubectl | None = None,
        seed_starter: bool = True,
        max_context_chars: int = DEFAULT_MAX_CHARS,
        top_patterns: int = 3,
        top_policies: int = 8,
        top_capabilities: int = 8,
    ) -> None:
        self.settings = settings
        self.store = store or KnowledgeStore(settings)
        self.embedder: Embedder = embedder or make_embedder(settings.embedding_model, settings.embedding_backend)
        self.kubectl = kubectl
        self.seed_starter = seed_starter
        self.max_context_chars = max_context_chars
        self.top_patterns = top_patterns
        self.top_policies = top_policies
        self.top_capabilities = top_capabilities
        self._ready = False
        self._ready_lock = threading.Lock()

    # ------------------------------------------------------------------ setup

    def ready(self) -> None:
        """Check stored vectors match the model; seed the starter set into a store that has none."""
        if self._ready:
            return
        with self._ready_lock, self.store.client():
            if self._ready:
                return
            missing = False
            for kind in KINDS:
                missing |= not self.store.check_index(kind, self.embedder.model_id)
            if missing:
                dim = self.embedder.dimension
                for kind in KINDS:
                    self.store.ensure(kind, self.embedder.model_id, dim)
                if self.seed_starter and not self.store.all("pattern") and not self.store.all("policy"):
                    self.put(load_yaml_items(starter_dir()))
            self._ready = True

    def warm_up(self) -> None:
        """Load the model and open the store now (e.g. in a background thread after the server starts)."""
        self.ready()
        self.embedder.embed(["warm up"])

    # ------------------------------------------------------------------ the Knowledge protocol

    def context_for(self, intent: str) -> RetrievedContext:
        """Patterns, policies and capabilities relevant to `intent`, ranked, capped, ready to embed."""
        self.ready()
        vector = self.embedder.embed([intent])[0]
        with self.store.client():
            self.store.check_index("pattern", self.embedder.model_id, len(vector))
            scanned = self.last_scan() is not None
            present = {c.item.id for c in self.store.all("capability")}
            patterns = self._rank("pattern", intent, vector)
            policies = self._rank("policy", intent, vector)[: self.top_policies]
            capabilities = self._rank("capability", intent, vector)
        usable: list[Hit] = []
        unavailable: list[Hit] = []
        for hit in patterns:
            need = hit.item.requires_capability if isinstance(hit.item, Pattern) else None
            if need is None or need in present:
                usable.append(hit)
            elif not scanned:
                usable.append(Hit(hit.item, hit.score, hit.vector, hit.keyword, available=None))
            else:
                unavailable.append(Hit(hit.item, hit.score, hit.vector, hit.keyword, available=False))
        chosen = [h for h in usable if h.score >= MIN_PATTERN_SCORE][: self.top_patterns]
        cutoff = chosen[-1].score if len(chosen) == self.top_patterns else MIN_PATTERN_SCORE
        caps = [
            h
            for h in capabilities
            if (isinstance(h.item, Capability) and h.item.known) or h.score >= MIN_CAPABILITY_SCORE
        ][: self.top_capabilities]
        return RetrievedContext(
            intent=intent,
            patterns=chosen,
            policies=policies,
            capabilities=caps,
            unavailable=[h for h in unavailable if h.score >= cutoff][:1],
            scanned=scanned,
            max_chars=self.max_context_chars,
        )

    def check_policies(
        self, commands: list[ProposedCommand], observed: Sequence[ObservedObject] | None = None
    ) -> list[PolicyCheck]:
        """Every policy against every change the commands make; current state from the cluster when we can."""
        lookup = None
        if self.kubectl is not None:
            lookup = self._live_lookup(self.kubectl)
        elif observed is not None:
            lookup = observed_lookup(observed)
        return evaluate_policies(
            self.policies(),
            commands,
            production_namespaces=self.settings.production_namespaces,
            observe=lookup,
            namespace_labels=self._namespace_labels if self.kubectl is not None else None,
        )

    # ------------------------------------------------------------------ reading

    def policies(self) -> list[Policy]:
        """The stored policies; the shipped ones while the store was never set up, so enforcement never waits
        for the embedding model."""
        if self.store.index_info("policy") is None:
            return [p for p in load_yaml_items(starter_dir() / "policies") if isinstance(p, Policy)]
        return [s.item for s in self.store.all("policy") if isinstance(s.item, Policy)]

    def items(self, kind: KindName) -> list[KnowledgeItem]:
        if kind != "capability" and self.store.index_info(kind) is None and self.seed_starter:
            self.ready()
        return [s.item for s in self.store.all(kind)]

    def hashes(self, kind: KindName, ids: Sequence[str]) -> dict[str, str]:
        """Content hashes of the named items as stored now: records keep them, replay compares them."""
        found: dict[str, str] = {}
        for item_id in ids:
            item = self.get(kind, item_id)
            if item is not None:
                found[item_id] = item.digest()
        return found

    def get(self, kind: KindName, item_id: str) -> KnowledgeItem | None:
        if kind != "capability" and self.store.index_info(kind) is None and self.seed_starter:
            self.ready()
        stored = self.store.get(kind, item_id)
        return stored.item if stored else None

    def search(self, kind: KindName, query: str, k: int = 5) -> list[Hit]:
        """Hybrid search over one kind, best first, with the score parts."""
        self.ready()
        vector = self.embedder.embed([query])[0]
        with self.store.client():
            self.store.check_index(kind, self.embedder.model_id, len(vector))
            return self._rank(kind, query, vector)[:k]

    def _rank(self, kind: KindName, query: str, vector: Sequence[float]) -> list[Hit]:
        found = self.store.search(kind, vector, CANDIDATES)
        return rank(query, [(s.item, s.score) for s in found])

    # ------------------------------------------------------------------ writing

    def put(self, items: Sequence[KnowledgeItem]) -> None:
        """Embed (batched) and store items as they are; import_items is the checked, idempotent way in."""
        if not items:
            return
        vectors = self.embedder.embed([i.search_text() for i in items])
        self.store.upsert(items, vectors)

    def import_items(self, items: Sequence[KnowledgeItem]) -> ImportReport:
        """Idempotent by id: new ids are created, changed ones replaced, identical ones left alone.
        Everything is validated (CEL compiled and tried) before anything is written."""
        ids = [(i.kind, i.id) for i in items]
        dupes = sorted({f"{k} {i}" for k, i in ids if ids.count((k, i)) > 1})
        if dupes:
            raise KnowledgeError(f"the same id appears more than once: {', '.join(dupes)}")
        for item in items:
            if isinstance(item, Policy):
                validate_policy(item)
        self.ready()
        report = ImportReport()
        to_write: list[KnowledgeItem] = []
        with self.store.client():
            for item in items:
                existing = self.store.get(item.kind, item.id)
                if existing is None:
                    report.created.append(f"{item.kind}/{item.id}")
                elif existing.digest != item.digest():
                    report.updated.append(f"{item.kind}/{item.id}")
                else:
                    report.unchanged.append(f"{item.kind}/{item.id}")
                    continue
                to_write.append(item)
            self.put(to_write)
        return report

    def import_path(self, path: Path) -> ImportReport:
        return self.import_items(load_yaml_items(path))

    def import_starter(self) -> ImportReport:
        return self.import_items(load_yaml_items(starter_dir()))

    def delete(self, kind: KindName, item_id: str) -> bool:
        with self.store.client():
            if self.store.get(kind, item_id) is None:
                return False
            self.store.delete(kind, [item_id])
            return True

    def reindex(self) -> ReindexReport:
        """Re-embed every stored item with the configured model; a JSON backup is written first."""
        with self.store.client():
            saved = {k: [s.item for s in self.store.all(k)] for k in KINDS}
            if not any(saved.values()):  # nothing to keep: start over, seeded like a first run
                for kind in KINDS:
                    self.store.drop(kind)
                self._ready = False
                self.ready()
                saved = {k: [s.item for s in self.store.all(k)] for k in KINDS}
            backup = self.store.backup(Path(self.settings.data_dir) / "backups")
            dim = self.embedder.dimension
            vectors = {k: self.embedder.embed([i.search_text() for i in saved[k]]) for k in KINDS}
            for kind in KINDS:
                self.store.drop(kind)
                self.store.ensure(kind, self.embedder.model_id, dim)
                if saved[kind]:
                    self.store.upsert(saved[kind], vectors[kind])
        self._ready = False
        return ReindexReport(
            model=self.embedder.model_id,
            dimension=dim,
            counts={k: len(v) for k, v in saved.items()},
            backup=str(backup),
        )

    # ------------------------------------------------------------------ capabilities

    def last_scan(self) -> str | None:
        """When `scan` last ran against this store (ISO time), None if never."""
        info = self.store.index_info("capability")
        return str(info["last_scan"]) if info and info.get("last_scan") else None

    def capabilities(self) -> list[Capability]:
        return [s.item for s in self.store.all("capability") if isinstance(s.item, Capability)]

    def scan(self, kubectl: Kubectl | None = None, progress: ScanProgress | None = None) -> ScanReport:
        """Discover the cluster and store what changed since the last scan (added/changed/removed)."""
        runner = kubectl or self.kubectl
        if runner is None:
            raise KnowledgeError("scan needs a kubectl runner (operate_mcp.kube.runner.Kubectl)")
        return scan(runner, self, progress=progress)

    # ------------------------------------------------------------------ cluster lookups for policies

    @staticmethod
    def _live_lookup(kubectl: Kubectl) -> Any:
        cache: dict[tuple[str, str, str], Mapping[str, Any] | None] = {}

        def lookup(change: dict[str, Any]) -> Mapping[str, Any] | None:
            resource = change["resource"]
            if not resource or not change["name"]:
                return None
            key = (resource, change["name"], change["namespace"])
            if key not in cache:
                target = Target(
                    get_as=resource,
                    resource=resource,
                    name=change["name"],
                    namespace=change["namespace"] or None,
                    kind=change["kind"] or None,
                )
                obj, raw = read_target(kubectl, target)
                meta = (raw or {}).get("metadata")
                labels = meta.get("labels") if isinstance(meta, dict) else None
                labels = labels if isinstance(labels, dict) else {}
                cache[key] = {
                    "exists": obj.exists,
                    "replicas": obj.replicas,
                    "labels": {str(k): str(v) for k, v in labels.items()},
                }
            return cache[key]

        return lookup

    def _namespace_labels(self, name: str) -> Mapping[str, str]:
        assert self.kubectl is not None
        result = self.kubectl.run(["kubectl", "get", "namespace", name, "-o", "json"], redact=False)
        if not result.ok:
            return {}
        try:
            labels = json.loads(result.stdout).get("metadata", {}).get("labels") or {}
        except json.JSONDecodeError:
            return {}
        return {str(k): str(v) for k, v in labels.items()}


def scan(kubectl: Kubectl, store: KnowledgeBase, progress: ScanProgress | None = None) -> ScanReport:
    """Discover capabilities through kubectl and update the knowledge base with only what changed."""
    total = 4
    discovery = discover(kubectl, progress, total)
    found = recognise(discovery)
    if progress:
        progress(
            3,
            total,
            f"recognised {sum(c.known for c in found)} known add-ons, "
            f"{sum(not c.known for c in found)} other CRD groups; storing changes",
        )
    store.ready()
    report = diff(store.capabilities(), found)
    report.warnings = discovery.warnings
    changed = {*report.added, *report.changed}
    with store.store.client():
        store.put([c for c in found if c.id in changed])
        store.store.delete("capability", report.removed)
        store.store.annotate("capability", last_scan=datetime.now(UTC).isoformat(timespec="seconds"))
    if progress:
        progress(
            4,
            total,
            f"{len(report.added)} added, {len(report.changed)} changed, "
            f"{len(report.removed)} removed, {len(report.unchanged)} unchanged",
        )
    return report
