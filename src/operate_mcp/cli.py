"""The `operate-mcp` command: serve, check-command, sessions, audit."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from operate_mcp import __version__
from operate_mcp.audit.cli import add_audit_parser
from operate_mcp.config import load_settings
from operate_mcp.errors import OperateError
from operate_mcp.knowledge.cli import add_knowledge_parsers
from operate_mcp.records.cli import add_records_parsers


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    from operate_mcp.server import create_server, http_app

    # Over HTTP the caller is whoever holds the token, not the OS user running the server.
    mcp = create_server(settings, caller=settings.http_user if args.transport == "http" else None)
    if args.transport == "stdio":
        mcp.run("stdio")
        return 0
    import uvicorn

    app = http_app(mcp, settings, args.host)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _check_command(args: argparse.Namespace) -> int:
    from operate_mcp.kube.commands import classify

    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    verdict = classify(argv)
    print(json.dumps(verdict.model_dump(by_alias=True, mode="json")))
    return 0 if verdict.command_class.value != "forbidden" else 3


def _sessions(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from operate_mcp.workflows.sessions import SessionStore

    settings = load_settings()
    store = SessionStore(settings.data_dir, settings.session_ttl_seconds)
    console = Console()
    if args.sessions_cmd == "show":
        session = store.reap_if_interrupted(args.session_id)
        if args.format == "json":
            print(session.model_dump_json(indent=2))
            return 0
        p = session.proposal
        console.print(f"[bold]{session.id}[/bold]  {session.status.value}  v{p.version}  risk {p.risk.tier.value}")
        console.print(f"intent: {p.intent}")
        console.print(f"analysis: {p.analysis}")
        for i, c in enumerate(p.commands, 1):
            dry = "dry-run ok" if c.dry_run and c.dry_run.ok else "dry-run FAILED" if c.dry_run else "not dry-run"
            console.print(f"  {i}. {c.display}  [dim]({dry})[/dim]", highlight=False, markup=False)
        console.print(f"digest: {p.digest}")
        return 0
    sessions = store.list()
    if args.format == "json":
        print(
            json.dumps(
                [
                    {
                        "id": s.id,
                        "status": s.status.value,
                        "intent": s.intent,
                        "risk": s.proposal.risk.tier.value,
                        "created_at": s.created_at.isoformat(),
                    }
                    for s in sessions
                ]
            )
        )
        return 0
    table = Table("session", "status", "risk", "intent", "created")
    for s in sessions:
        table.add_row(s.id, s.status.value, s.proposal.risk.tier.value, s.intent, f"{s.created_at:%Y-%m-%d %H:%M}")
    console.print(table)
    return 0


def _decide(args: argparse.Namespace) -> int:
    from rich.console import Console

    from operate_mcp.audit.log import AuditLog
    from operate_mcp.audit.redact import redact_text
    from operate_mcp.governance.approval import (
        approvers_needed,
        record_approval,
        record_rejection,
        valid_approvals,
    )
    from operate_mcp.identity import os_user
    from operate_mcp.workflows.decision import write_decision_record
    from operate_mcp.workflows.sessions import SessionStatus, SessionStore

    settings = load_settings()
    store = SessionStore(settings.data_dir, settings.session_ttl_seconds)
    audit = AuditLog(settings.data_dir)
    who = os_user()
    console = Console()
    if args.command == "reject":
        session = record_rejection(store, args.session_id, actor=who, method="cli", justification=args.justification)
        audit.append(
            "rejection", actor=who, session_id=session.id, data={"method": "cli", "justification": args.justification}
        )
        write_decision_record(settings.data_dir, session)
        console.print(f"rejected {session.id} as {who}")
        return 0
    shown = store.load(args.session_id)
    console.print(f"[bold]{shown.id}[/bold] risk {shown.proposal.risk.tier.value}: {shown.proposal.intent}")
    for i, c in enumerate(shown.proposal.commands, 1):
        console.print(f"  {i}. {c.display}", markup=False, highlight=False)
        if c.command.stdin:
            for line in redact_text(c.command.stdin).splitlines():
                console.print(f"     | {line}", markup=False, highlight=False)
    console.print(f"digest sha256:{shown.proposal.digest}")
    if not sys.stdin.isatty():
        # An agent with a shell must not be able to approve its own proposal: a person types the digest.
        print("operate-mcp approve must be run by a person in a terminal (stdin is not a TTY)", file=sys.stderr)
        return 2
    typed = input("Type the first 8 characters of the digest to approve: ").strip().lower()
    if len(typed) < 8 or not shown.proposal.digest.startswith(typed):
        print("the digest does not match; nothing was approved", file=sys.stderr)
        return 2
    session = record_approval(
        store,
        args.session_id,
        approver=who,
        method="cli",
        settings=settings,
        justification=args.justification,
        expected_digest=shown.proposal.digest,
    )
    audit.append(
        "approval",
        actor=who,
        session_id=session.id,
        data={
            "method": "cli",
            "digest": session.proposal.digest,
            "justification": args.justification,
            "tier": session.proposal.risk.tier.value,
        },
    )
    if session.status is SessionStatus.APPROVED:
        console.print(f"approved by {who}; the agent can now run operate(sessionId='{session.id}', executeChoice=1)")
    else:
        have = len(valid_approvals(session, settings))
        console.print(
            f"approval {have} of {approvers_needed(session.proposal.risk.tier)} recorded ({who}); "
            "a second, different person must approve too"
        )
    return 0


def _replay(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from operate_mcp.audit.log import AuditLog
    from operate_mcp.identity import os_user
    from operate_mcp.kube.runner import Kubectl
    from operate_mcp.records.store import RecordStore
    from operate_mcp.server import default_provider
    from operate_mcp.workflows.operate import OperateDeps
    from operate_mcp.workflows.replay import parse_overrides, plan_replay, replay
    from operate_mcp.workflows.sessions import SessionStore

    settings = load_settings()
    deps = OperateDeps(
        settings=settings,
        kubectl=Kubectl(settings),
        provider=default_provider(settings) if args.fresh_context else None,
        sessions=SessionStore(settings.data_dir, settings.session_ttl_seconds),
        audit=AuditLog(settings.data_dir),
        records=RecordStore(settings.data_dir, retention_days=settings.records_retention_days),
    )
    plan = plan_replay(deps, args.id, parse_overrides(args.override or []))
    console = Console()
    if args.dry_run:
        if args.format == "json":
            print(plan.model_dump_json(indent=2))
            return 0
        console.print(f"replay of {plan.original_session}: {plan.intent}")
        for i, c in enumerate(plan.commands, 1):
            console.print(f"  {i}. {c.display}", markup=False, highlight=False)
        for w in plan.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
        return 0
    session = asyncio.run(replay(deps, plan, caller=os_user(), triggered_by="cli", fresh_context=args.fresh_context))
    if args.format == "json":
        print(session.model_dump_json(indent=2))
        return 0
    for w in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {w}")
    console.print(
        f"new session {session.id} (replay of {plan.original_session}), risk {session.proposal.risk.tier.value}"
    )
    console.print(f"approve it with: operate-mcp approve {session.id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="operate-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"operate-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check-command", help="classify a kubectl command line: read, dry-run, mutating, forbidden")
    check.add_argument("argv", nargs=argparse.REMAINDER, help="-- kubectl ...")
    check.set_defaults(func=_check_command)

    sessions = sub.add_parser("sessions", help="list or show proposal sessions")
    ssub = sessions.add_subparsers(dest="sessions_cmd", required=True)
    lst = ssub.add_parser("list")
    lst.add_argument("--format", choices=["text", "json"], default="text")
    show = ssub.add_parser("show")
    show.add_argument("session_id")
    show.add_argument("--format", choices=["text", "json"], default="text")
    sessions.set_defaults(func=_sessions)

    for verb, text in (("approve", "approve a proposal as yourself (the OS user)"), ("reject", "reject a proposal")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("session_id")
        p.add_argument("--justification", default="", help="why; kept in the audit log and decision record")
        p.set_defaults(func=_decide)

    rp = sub.add_parser("replay", help="rebuild a past operation from the verified audit log as a new session")
    rp.add_argument("id", help="execution record id (run-...) or session id (opr-...)")
    rp.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    rp.add_argument("--fresh-context", action="store_true", help="analyse the intent again with the model")
    rp.add_argument("--override", action="append", metavar="KEY=VALUE", help="intent=... or namespace=...")
    rp.add_argument("--format", choices=["text", "json"], default="text")
    rp.set_defaults(func=_replay)

    add_audit_parser(sub)
    add_knowledge_parsers(sub)
    add_records_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except OperateError as exc:
        print(f"operate-mcp: {exc}", file=sys.stderr)
        return 2
    return code
