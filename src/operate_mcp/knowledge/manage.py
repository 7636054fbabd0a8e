"""`manage_knowledge`: list / get / create / delete / search / import patterns and policies.

One function behind both the MCP tool and the CLI, so they behave the same, with one difference
decided here, after parsing: over MCP only patterns are written. Policies gate the agent's own
proposals, so only a person changes them (the CLI); capabilities are written by `scan` only.
Every change is audited here, on every channel, with the ids and kinds actually written.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from operate_mcp.audit.log import AuditLog
from operate_mcp.knowledge.base import ImportReport, KnowledgeBase
from operate_mcp.knowledge.models import (
    KINDS,
    KindName,
    KnowledgeError,
    KnowledgeItem,
    load_yaml_items,
    parse_item,
    starter_dir,
)

Action = Literal["list", "get", "create", "delete", "search", "import"]
Channel = Literal["mcp", "cli"]
WRITE_ACTIONS: tuple[Action, ...] = ("create", "delete", "import")
# What each channel may write. The MCP client is (or relays) the agent whose proposals policies gate.
WRITABLE: dict[Channel, frozenset[KindName]] = {
    "mcp": frozenset({"pattern"}),
    "cli": frozenset({"pattern", "policy"}),
}
POLICY_OVER_MCP = (
    "policies cannot be changed over MCP: the agent must not edit the rules that gate its own proposals. "
    "Ask the person to run `operate-mcp knowledge import|create|delete --kind policy ...`"
)


class SearchHit(BaseModel):
    id: str
    kind: str
    name: str
    score: float
    vector_score: float
    keyword_score: float


class KnowledgeChange(BaseModel):
    """One item this call wrote or deleted, with the kind it was stored as."""

    kind: KindName
    id: str
    change: Literal["created", "updated", "deleted"]


class ManageResult(BaseModel):
    """What a manage_knowledge call did; `items` are full items as they are stored, `changes` what was written."""

    action: Action
    kind: KindName
    items: list[dict[str, Any]] = Field(default_factory=list)
    hits: list[SearchHit] = Field(default_factory=list)
    report: ImportReport | None = None
    deleted: bool | None = None
    changes: list[KnowledgeChange] = Field(default_factory=list)
    message: str = ""


def _dump(item: KnowledgeItem) -> dict[str, Any]:
    return item.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse_inline(data: Any, kind: KindName, source: str) -> KnowledgeItem:
    """An item given inline must be of the kind asked for: `kind: policy` inside a pattern import is refused."""
    if isinstance(data, dict):
        said = [v for k, v in data.items() if isinstance(k, str) and k.lower() == "kind"]
        if any(v != kind for v in said):
            raise KnowledgeError(
                f"{source} says kind: {said[0] if len(said) == 1 else said} but kind={kind} was asked; "
                f"ask with the kind the item says, or fix the item. Nothing was written"
            )
    return parse_item(data, kind, source=source)


def _items_from(item: dict[str, Any] | None, text: str | None, kind: KindName) -> list[KnowledgeItem]:
    if item is not None:
        return [_parse_inline(item, kind, "item")]
    if text is None:
        raise KnowledgeError("give the item as `item` (a mapping) or `yaml` (YAML text)")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise KnowledgeError(f"not valid YAML: {exc}") from exc
    return [_parse_inline(d, kind, f"document {n}") for n, d in enumerate(docs, 1)]


def _check_writable(items: Sequence[KnowledgeItem], channel: Channel) -> None:
    """All or nothing: one item this channel may not write refuses the whole call before anything is written."""
    capabilities = [i.id for i in items if i.kind == "capability"]
    if capabilities:
        raise KnowledgeError(f"capabilities are written by scan only: {', '.join(capabilities)}; nothing was written")
    refused = [f"{i.kind} {i.id}" for i in items if i.kind not in WRITABLE[channel]]
    if refused:
        raise KnowledgeError(f"{', '.join(refused)}: {POLICY_OVER_MCP}. Nothing was written")


def _changes(items: Sequence[KnowledgeItem], report: ImportReport) -> list[KnowledgeChange]:
    changes = []
    for i in items:
        ref = f"{i.kind}/{i.id}"
        if ref in report.created:
            changes.append(KnowledgeChange(kind=i.kind, id=i.id, change="created"))
        elif ref in report.updated:
            changes.append(KnowledgeChange(kind=i.kind, id=i.id, change="updated"))
    return changes


def _import_sources(
    item: dict[str, Any] | None, yaml_text: str | None, path: str | None, kind: KindName, channel: Channel
) -> tuple[list[KnowledgeItem], str]:
    """The items an import writes and where they came from; files say their own kinds."""
    if item is not None or yaml_text is not None:
        return _items_from(item, yaml_text, kind), "inline"
    if channel == "mcp":
        # Files on the server's disk are the operator's, and the starter set holds policies.
        raise KnowledgeError(
            "over MCP, import takes the items inline (yamlText or item); importing files or the starter set is "
            "for the person at the CLI: `operate-mcp knowledge import PATH` or `--starter`"
        )
    if path is not None:
        return load_yaml_items(Path(path).expanduser()), str(path)
    return load_yaml_items(starter_dir()), "starter"


def _delete(kb: KnowledgeBase, kind: KindName, item_id: str, channel: Channel) -> list[KnowledgeChange]:
    if kb.get(kind, item_id) is None:
        # An id the caller may not touch is named as such, not reported as merely missing.
        for other in KINDS:
            if other != kind and other not in WRITABLE[channel] and kb.get(other, item_id) is not None:
                why = POLICY_OVER_MCP if other == "policy" else "capabilities are written by `scan` only"
                raise KnowledgeError(f"{item_id} is a {other}, not a {kind}: {why}")
        return []
    return [KnowledgeChange(kind=kind, id=item_id, change="deleted")] if kb.delete(kind, item_id) else []


def _write(
    kb: KnowledgeBase,
    action: Action,
    kind: KindName,
    channel: Channel,
    *,
    item_id: str | None,
    item: dict[str, Any] | None,
    yaml_text: str | None,
    path: str | None,
    replace: bool,
) -> tuple[ManageResult, dict[str, Any]]:
    """Do one create / delete / import; returns the result and what the audit entry adds to it."""
    if kind == "capability":
        raise KnowledgeError("capabilities are written by `scan` only; run operate-mcp scan")
    if kind not in WRITABLE[channel]:
        raise KnowledgeError(POLICY_OVER_MCP)
    if channel == "mcp" and path is not None:
        raise KnowledgeError("over MCP, items are given inline (yamlText or item), never as a path on the server")
    if action == "delete":
        if not item_id:
            raise KnowledgeError("delete needs the item's id")
        changes = _delete(kb, kind, item_id, channel)
        message = f"deleted {kind} {item_id}" if changes else f"no {kind} with id {item_id!r}"
        return ManageResult(action=action, kind=kind, deleted=bool(changes), changes=changes, message=message), {}
    if action == "create":
        items = _items_from(item, yaml_text, kind)
        _check_writable(items, channel)
        if not replace:
            taken = [f"{i.kind} {i.id}" for i in items if kb.get(i.kind, i.id) is not None]
            if taken:
                raise KnowledgeError(f"{', '.join(taken)} already exists; use import (or replace) to update it")
        report = kb.import_items(items)
        result = ManageResult(
            action=action, kind=kind, report=report, items=[_dump(i) for i in items], changes=_changes(items, report)
        )
        return result, {}
    items, source = _import_sources(item, yaml_text, path, kind, channel)
    _check_writable(items, channel)
    report = kb.import_items(items)
    result = ManageResult(
        action=action,
        kind=kind,
        report=report,
        changes=_changes(items, report),
        message=f"{len(report.created)} created, {len(report.updated)} updated, {len(report.unchanged)} unchanged",
    )
    return result, {"source": source}


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
    channel: Channel = "mcp",
    audit: AuditLog | None = None,
    actor: str | None = None,
) -> ManageResult:
    """Do one knowledge action; errors are KnowledgeError with a message saying what to change.

    `channel` decides what may be written and defaults to the least trusted one (MCP): the CLI
    says `channel="cli"`. With `audit`, every create / delete / import appends one `knowledge.change`
    entry (action, channel, the kinds and ids written or deleted) as `actor`, and a refused one a
    `knowledge.refused` entry with the reason.
    """
    if audit is not None and not actor:
        raise ValueError("manage_knowledge: an audited call needs the actor (who asked)")
    if action == "list":
        return ManageResult(action=action, kind=kind, items=[_dump(i) for i in kb.items(kind)])
    if action == "get":
        if not item_id:
            raise KnowledgeError("get needs the item's id")
        found = kb.get(kind, item_id)
        if found is None:
            how = f"operate-mcp knowledge list --kind {kind}" if channel == "cli" else f"action=list, kind={kind}"
            raise KnowledgeError(f"no {kind} with id {item_id!r}; list them with {how}")
        return ManageResult(action=action, kind=kind, items=[_dump(found)])
    if action == "search":
        if not query:
            raise KnowledgeError("search needs a query, e.g. 'autoscale on queue length'")
        hits = kb.search(kind, query, k)
        return ManageResult(
            action=action,
            kind=kind,
            hits=[
                SearchHit(
                    id=h.item.id,
                    kind=h.item.kind,
                    name=h.item.name,
                    score=h.score,
                    vector_score=h.vector,
                    keyword_score=h.keyword,
                )
                for h in hits
            ],
        )
    if action not in WRITE_ACTIONS:
        raise KnowledgeError(f"unknown action {action!r}; use list, get, create, delete, search or import")
    # `requested_kind` is what the caller asked for; `changes` holds the kinds actually stored.
    entry: dict[str, Any] = {"action": action, "channel": channel, "requested_kind": kind}
    try:
        result, extra = _write(
            kb, action, kind, channel, item_id=item_id, item=item, yaml_text=yaml_text, path=path, replace=replace
        )
    except KnowledgeError as exc:
        if audit is not None and actor:
            target = {"id": item_id} if item_id else {}
            audit.append("knowledge.refused", actor=actor, data={**entry, **target, "reason": str(exc)})
        raise
    if audit is not None and actor:
        audit.append(
            "knowledge.change",
            actor=actor,
            data={
                **entry,
                **extra,
                "changes": [c.model_dump() for c in result.changes],
            },
        )
    return result
