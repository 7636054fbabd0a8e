"""`operate-mcp knowledge ...`, `operate-mcp patterns` and `operate-mcp scan`: knowledge from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from operate_mcp.audit.log import audit_log_for
from operate_mcp.config import Settings, add_data_dir_option, settings_for
from operate_mcp.errors import OperateError
from operate_mcp.identity import os_user
from operate_mcp.knowledge.models import PLURAL, dump_yaml, parse_item
from operate_mcp.kube.runner import Kubectl

KIND_CHOICES = ("pattern", "policy", "capability")


def _settings(args: argparse.Namespace) -> Settings:
    return settings_for(args)


def _kb(args: argparse.Namespace, *, kubectl: bool = False) -> Any:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.base import KnowledgeBase

    settings = _settings(args)
    return KnowledgeBase(settings, kubectl=Kubectl(settings) if kubectl else None)


def _audited(kb: Any) -> dict[str, Any]:
    """How a CLI change is made and recorded: a person's channel, audited under their OS account."""

    return {"channel": "cli", "audit": audit_log_for(kb.settings), "actor": os_user()}


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _fail(console: Console, exc: OperateError) -> int:
    console.print(f"[red]error:[/red] {escape(str(exc))}")
    return 1


def _list(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    try:
        result = manage_knowledge(_kb(args), "list", args.kind, channel="cli")
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json(result.items)
        return 0
    table = Table(title=f"{PLURAL[args.kind]} ({len(result.items)})")
    table.add_column("id")
    table.add_column("name")
    table.add_column("detail")
    for item in result.items:
        if args.kind == "pattern":
            detail = f"needs {item['requires_capability']}" if item.get("requires_capability") else ""
        elif args.kind == "policy":
            detail = f"effect {item['effect']}, {len(item['rules'])} rule(s)"
        else:
            detail = item.get("category", "")
        table.add_row(item["id"], item["name"], detail)
    console.print(table)
    return 0


def _get(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    try:
        result = manage_knowledge(_kb(args), "get", args.kind, item_id=args.id, channel="cli")
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json(result.items[0])
    else:
        print(dump_yaml(parse_item(result.items[0], args.kind)), end="")
    return 0


def _read_text(source: str) -> str:
    return sys.stdin.read() if source == "-" else Path(source).read_text()


def _create(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    try:
        text = _read_text(args.file)
    except OSError as exc:
        console.print(f"[red]error:[/red] cannot read {escape(args.file)}: {escape(exc.strerror or str(exc))}")
        return 1
    try:
        kb = _kb(args)
        result = manage_knowledge(kb, "create", args.kind, yaml_text=text, replace=args.replace, **_audited(kb))
    except OperateError as exc:
        return _fail(console, exc)
    report = result.report
    assert report is not None
    if args.format == "json":
        _print_json(report.model_dump())
    else:
        for key in ("created", "updated", "unchanged"):
            for ref in getattr(report, key):
                console.print(f"{key}: {escape(ref)}")
    return 0


def _delete(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    try:
        kb = _kb(args)
        result = manage_knowledge(kb, "delete", args.kind, item_id=args.id, **_audited(kb))
    except OperateError as exc:
        return _fail(console, exc)
    console.print(escape(result.message))
    return 0 if result.deleted else 1


def _search(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    try:
        result = manage_knowledge(_kb(args), "search", args.kind, query=" ".join(args.query), k=args.k, channel="cli")
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json([h.model_dump() for h in result.hits])
        return 0
    table = Table(title=f"{PLURAL[args.kind]} for: {' '.join(args.query)}")
    for column in ("score", "id", "name", "vector", "keyword"):
        table.add_column(column)
    for h in result.hits:
        table.add_row(f"{h.score:.3f}", h.id, h.name, f"{h.vector_score:.3f}", f"{h.keyword_score:.2f}")
    console.print(table)
    return 0


def _import(args: argparse.Namespace) -> int:
    # lazy: the knowledge base (Qdrant client, CEL, embeddings) loads only for knowledge commands
    from operate_mcp.knowledge.manage import manage_knowledge

    console = Console()
    if not args.paths and not args.starter:
        console.print("[red]error:[/red] name files or directories to import, or --starter for the shipped set")
        return 2
    kb = _kb(args)
    reports = []
    try:
        audited = _audited(kb)
        sources: list[str | None] = [*args.paths] + ([None] if args.starter else [])
        for source in sources:  # files say their own kinds; "pattern" is only the default for inline items
            reports.append(manage_knowledge(kb, "import", "pattern", path=source, **audited))
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json([r.report.model_dump() for r in reports if r.report])
        return 0
    for r in reports:
        assert r.report is not None
        for key in ("created", "updated", "unchanged"):
            for ref in getattr(r.report, key):
                console.print(f"{key}: {escape(ref)}")
        console.print(escape(r.message))
    return 0


def _reindex(args: argparse.Namespace) -> int:
    console = Console()
    kb = _kb(args)
    try:
        with console.status(f"re-embedding with {kb.settings.embedding_model} ..."):
            report = kb.reindex()
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json(report.model_dump())
        return 0
    counts = ", ".join(f"{n} {k}(s)" for k, n in report.counts.items())
    console.print(f"re-embedded {counts} with {escape(report.model)} ({report.dimension} dimensions)")
    console.print(f"backup of the items before reindexing: {escape(report.backup)}")
    return 0


def _patterns(args: argparse.Namespace) -> int:
    args.kind = "pattern"
    return _list(args)


def _scan(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=args.format == "json")
    kb = _kb(args, kubectl=True)
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TimeElapsedColumn(), console=console, transient=args.format == "json") as bar:
            task = bar.add_task("scanning the cluster", total=4)

            def progress(step: int, total: int, message: str) -> None:
                bar.update(task, completed=step, total=total, description=message)

            report = kb.scan(progress=progress)
    except OperateError as exc:
        return _fail(console, exc)
    if args.format == "json":
        _print_json(report.model_dump(mode="json"))
        return 0
    table = Table(title="cluster capabilities")
    for column in ("id", "name", "category", "status", "resources"):
        table.add_column(column)
    status = {**dict.fromkeys(report.added, "added"), **dict.fromkeys(report.changed, "changed"),
              **dict.fromkeys(report.unchanged, "unchanged")}
    for cap in report.capabilities:
        shown = ", ".join(cap.resources[:4]) + (" ..." if len(cap.resources) > 4 else "")
        table.add_row(cap.id, cap.name, cap.category, status.get(cap.id, ""), shown)
    console.print(table)
    if report.removed:
        console.print(f"removed (no longer in the cluster): {escape(', '.join(report.removed))}")
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    console.print(f"{len(report.added)} added, {len(report.changed)} changed, {len(report.removed)} removed, "
                  f"{len(report.unchanged)} unchanged")
    return 0


def _common(parser: argparse.ArgumentParser, *, kind: bool = True, fmt: bool = True) -> None:
    if kind:
        parser.add_argument("--kind", choices=KIND_CHOICES, default="pattern", help="default: pattern")
    if fmt:
        parser.add_argument("--format", choices=("text", "json"), default="text")
    add_data_dir_option(parser)


def add_knowledge_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `knowledge list|get|create|delete|search|import|reindex`, `patterns` and `scan`;
    each sets `func(args) -> exit code`."""
    knowledge = subparsers.add_parser("knowledge", help="patterns, policies and capabilities (Qdrant)")
    commands = knowledge.add_subparsers(dest="knowledge_command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", help="list patterns, policies or capabilities")
    _common(p)
    p.set_defaults(func=_list)

    p = commands.add_parser("get", help="show one item as YAML")
    p.add_argument("id")
    _common(p)
    p.set_defaults(func=_get)

    p = commands.add_parser(
        "create", help="create items of --kind from a YAML file ('-' for stdin); refuses existing ids"
    )
    p.add_argument("file")
    p.add_argument("--replace", action="store_true", help="replace an item with the same id")
    _common(p)
    p.set_defaults(func=_create)

    p = commands.add_parser("delete", help="delete one item by id")
    p.add_argument("id")
    _common(p, fmt=False)
    p.set_defaults(func=_delete)

    p = commands.add_parser("search", help="hybrid search (vector + keywords)")
    p.add_argument("query", nargs="+")
    p.add_argument("-k", type=int, default=5, help="how many results (default 5)")
    _common(p)
    p.set_defaults(func=_search)

    p = commands.add_parser("import", help="import YAML files or directories; idempotent by id")
    p.add_argument("paths", nargs="*")
    p.add_argument("--starter", action="store_true", help="also import the shipped starter set")
    _common(p, kind=False)
    p.set_defaults(func=_import)

    p = commands.add_parser("reindex", help="re-embed everything with the configured embedding model")
    _common(p, kind=False)
    p.set_defaults(func=_reindex)

    p = subparsers.add_parser("patterns", help="list the patterns (same as knowledge list --kind pattern)")
    _common(p, kind=False)
    p.set_defaults(func=_patterns)

    p = subparsers.add_parser("scan", help="discover the cluster's capabilities (operators, add-ons, CRDs)")
    _common(p, kind=False)
    p.set_defaults(func=_scan)
