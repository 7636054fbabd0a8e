"""`manage_knowledge`: list / get / create / delete / search / import patterns and policies.

One function behind both the MCP tool and the CLI, so they behave the same. Capabilities can be
listed, read and searched; they are written only by `scan`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from operate_mcp.knowledge.base import ImportReport, KnowledgeBase
from operate_mcp.knowledge.models import (
    KindName,
    KnowledgeError,
    KnowledgeItem,
    load_yaml_items,
    parse_item,
    starter_dir,
)

Action = Literal["list", "get", "create", "delete", "search", "import"]


class SearchHit(BaseModel):
    id: str
    kind: str
    name: str
    score: float
    vector_score: float
    keyword_score: float


class ManageResult(BaseModel):
    """What a manage_knowledge call did; `items` are full items as they are stored."""

    action: Action
    kind: KindName
    items: list[dict[str, Any]] = Field(default_factory=list)
    hits: list[SearchHit] = Field(default_factory=list)
    report: ImportReport | None = None
    deleted: bool | None = None
    message: str = ""


def _dump(item: KnowledgeItem) -> dict[str, Any]:
    return item.model_dump(mode="json", by_alias=True, exclude_none=True)


def _items_from(item: dict[str, Any] | None, text: str | None, kind: KindName) -> list[KnowledgeItem]:
    if item is not None:
        return [parse_item(item, kind)]
    if text is None:
        raise KnowledgeError("give the item as `item` (a mapping) or `yaml` (YAML text)")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"not valid YAML: {exc}") from exc
    return [parse_item(d, None if isinstance(d, dict) and "kind" in d else kind) for d in docs]


def _refuse_capabilities(items: list[KnowledgeItem]) -> None:
    capabilities = [i.id for i in items if i.kind == "capability"]
    if capabilities:
        raise KnowledgeError(f"capabilities are written by scan only: {', '.join(capabilities)}")


def manage_knowledge(
    kb: KnowledgeBase,
    action: Action,
    kind: KindName = "pattern",
    *,
    item_id: str | None = None,
    item: dict[str, Any] | None = None,
    yaml_text: str | None = None,
    query: str | None = None,
    path: str | None = None,
    k: int = 5,
    replace: bool = False,
) -> ManageResult:
    """Do one knowledge action; errors are KnowledgeError with a message saying what to change."""
    if action in ("create", "delete") and kind == "capability":
        raise KnowledgeError("capabilities are written by `scan` only; run operate-mcp scan")
    if action == "list":
        return ManageResult(action=action, kind=kind, items=[_dump(i) for i in kb.items(kind)])
    if action == "get":
        if not item_id:
            raise KnowledgeError("get needs the item's id")
        found = kb.get(kind, item_id)
        if found is None:
            raise KnowledgeError(f"no {kind} with id {item_id!r}; list them with action=list")
        return ManageResult(action=action, kind=kind, items=[_dump(found)])
    if action == "search":
        if not query:
            raise KnowledgeError("search needs a query, e.g. 'autoscale on queue length'")
        hits = kb.search(kind, query, k)
        return ManageResult(action=action, kind=kind, hits=[
            SearchHit(id=h.item.id, kind=h.item.kind, name=h.item.name, score=h.score, vector_score=h.vector,
                      keyword_score=h.keyword) for h in hits
        ])
    if action == "delete":
        if not item_id:
            raise KnowledgeError("delete needs the item's id")
        deleted = kb.delete(kind, item_id)
        return ManageResult(action=action, kind=kind, deleted=deleted,
                            message=f"deleted {kind} {item_id}" if deleted else f"no {kind} with id {item_id!r}")
    if action == "create":
        items = _items_from(item, yaml_text, kind)
        _refuse_capabilities(items)
        if not replace:
            taken = [f"{i.kind} {i.id}" for i in items if kb.get(i.kind, i.id) is not None]
            if taken:
                raise KnowledgeError(f"{', '.join(taken)} already exists; use import (or replace) to update it")
        report = kb.import_items(items)
        return ManageResult(action=action, kind=kind, report=report, items=[_dump(i) for i in items])
    if action == "import":
        if path is not None:
            items = load_yaml_items(Path(path).expanduser())
        elif item is not None or yaml_text is not None:
            items = _items_from(item, yaml_text, kind)
        else:
            items = load_yaml_items(starter_dir())
        _refuse_capabilities(items)
        report = kb.import_items(items)
        return ManageResult(action=action, kind=kind, report=report,
                            message=f"{len(report.created)} created, {len(report.updated)} updated, "
                                    f"{len(report.unchanged)} unchanged")
    raise KnowledgeError(f"unknown action {action!r}; use list, get, create, delete, search or import")
