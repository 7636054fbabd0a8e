"""The `operate-mcp` command: serve, check-command, diagnose, sessions, approve / reject, approver, replay, audit,
knowledge, runs. It only wires: use cases live in workflows/, the proposal's rendering in
workflows/display.py."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from operate_mcp import __version__
from operate_mcp.approvers import (
    MIN_PASSPHRASE,
    approval_payload,
    check_can_init,
    default_key_path,
    init_key,
    load_registry,
    read_passphrase,
    sign_approval,
    verify_approval,
)
from operate_mcp.audit.cli import add_audit_parser
from operate_mcp.audit.log import audit_log_for
from operate_mcp.config import add_data_dir_option, load_settings, settings_for
from operate_mcp.errors import OperateError
from operate_mcp.governance.approval import approvers_needed
from operate_mcp.identity import os_user
from operate_mcp.knowledge.cli import add_knowledge_parsers
from operate_mcp.kube.classifier import classify
from operate_mcp.kube.context import default_namespace
from operate_mcp.kube.reader import reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.session import SessionStatus
from operate_mcp.observe.cli import add_observe_parsers
from operate_mcp.records.cli import add_records_parsers
from operate_mcp.server.serve import add_serve_arguments
from operate_mcp.workflows.decide import approve, reject, valid_approvals
from operate_mcp.workflows.diagnose import diagnose
from operate_mcp.workflows.display import approval_lines, diagnosis_lines, one_line, summary_lines
from operate_mcp.workflows.doctor import run_doctor
from operate_mcp.workflows.replay import parse_overrides, plan_replay, replay
from operate_mcp.workflows.sessions import SessionStore


def _serve(args: argparse.Namespace) -> int:
    # lazy: the MCP SDK takes about a second to import; only `serve` and `replay` need it
    from operate_mcp.server.serve import serve

    return serve(args)


def _check_command(args: argparse.Namespace) -> int:
    argv = list(args.argv)
    if argv and argv[0] == "--":
        argv = argv[1:]
    verdict = classify(argv)
    print(json.dumps(verdict.model_dump(by_alias=True, mode="json")))
    return 0 if verdict.command_class.value != "forbidden" else 3


def _diagnose(args: argparse.Namespace) -> int:
    settings = load_settings()
    kubectl = Kubectl(settings)
    namespace = None if args.all_namespaces else args.namespace or default_namespace(kubectl)
    result = diagnose(reader_for(kubectl), namespace=namespace)
    if not result.analyzers_run:
        raise OperateError(
            "diagnose could not read the cluster: " + ("; ".join(result.not_read[:3]) or "no analyzer ran")
        )
    if args.format == "json":
        print(result.model_dump_json(indent=2))
    else:
        print("\n".join(diagnosis_lines(result)))  # long evidence lines stay whole: no wrapping
    return 1 if result.failing else 0


def _sessions(args: argparse.Namespace) -> int:
    settings = load_settings()
    store = SessionStore(settings.data_dir, settings.session_ttl_seconds)
    console = Console()
    if args.sessions_cmd == "show":
        session = store.reap_if_interrupted(args.session_id)
        if args.format == "json":
            print(session.model_dump_json(indent=2))
            return 0
        _say(console, summary_lines(session))
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
    table.columns[0].no_wrap = True  # an id cut at 80 columns cannot be copied into `approve`
    for s in sessions:
        table.add_row(
            s.id,
            s.status.value,
            s.proposal.risk.tier.value,
            Text(one_line(s.intent)),
            f"{s.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)
    return 0


def _say(console: Console, lines: Sequence[str]) -> None:
    """Lines holding agent-written text (made inert by workflows/display.py): never markup, never highlighted."""
    for line in lines:
        console.print(line, markup=False, highlight=False)


def _decide(args: argparse.Namespace) -> int:
    """approve / reject. Approving signs (session, version, digest, tier) with the person's enrolled key."""
    settings = settings_for(args)
    store = SessionStore(settings.data_dir, settings.session_ttl_seconds)
    audit = audit_log_for(settings)
    console = Console()
    if args.command == "reject":
        # Rejecting is always safe, so it needs no key; the name is still the real OS user, never $USER.
        who = os_user()
        session = reject(
            store, audit, args.session_id, actor=who, method="cli", settings=settings, justification=args.justification
        )
        _say(console, [f"rejected {session.id} as {who}"])
        return 0
    shown = store.load(args.session_id)
    p = shown.proposal
    if shown.status is not SessionStatus.PROPOSED:
        raise OperateError(f"session {shown.id} is {shown.status.value}; only a proposed session can be approved")
    _say(console, approval_lines(shown))
    key_path = args.key or default_key_path()
    passphrase = read_passphrase(f"Passphrase of your approver key {key_path} (approves the commands above): ")
    signed_at = datetime.now(UTC)
    payload = approval_payload(shown.id, p.version, p.digest, p.risk.tier.value, signed_at=signed_at.isoformat())
    key_id, signature = sign_approval(key_path, passphrase, payload)
    problems: list[str] = []
    registry = load_registry(settings.approvers_dir, problems)
    if key_id not in registry:
        why = "; ".join(problems) or "enrol it with `operate-mcp approver init`"
        raise OperateError(f"your key {key_path} ({key_id}) is not enrolled in {settings.approvers_dir}: {why}")
    # The name recorded is the one the registry gives this key (its file's owner), not who this process says it is.
    who = verify_approval(registry, key_id, payload, signature).identity
    session = approve(
        store,
        audit,
        args.session_id,
        approver=who,
        method="cli",
        settings=settings,
        justification=args.justification,
        signed_at=signed_at,
        expected_digest=p.digest,
        expected_version=p.version,
        key_id=key_id,
        signature=signature,
    )
    if session.status is SessionStatus.APPROVED:
        _say(console, [f"approved by {who}; the agent can now run operate(sessionId='{session.id}', executeChoice=1)"])
    else:
        have = len(valid_approvals(session, settings))
        _say(
            console,
            [
                f"approval {have} of {approvers_needed(session.proposal.risk.tier)} recorded ({who}); "
                "a second, different person must approve too"
            ],
        )
    return 0


def _approver(args: argparse.Namespace) -> int:
    """approver init (create and enrol your key) / approver list (who is enrolled, which files are ignored)."""
    settings = load_settings()
    console = Console()
    if args.approver_cmd == "init":
        key_path = args.key or default_key_path()
        name = os_user()
        check_can_init(key_path, settings.approvers_dir, name, force=args.force)
        passphrase = read_passphrase(f"New passphrase for {key_path} (at least {MIN_PASSPHRASE} characters): ")
        if len(passphrase) < MIN_PASSPHRASE:
            raise OperateError(f"the passphrase must be at least {MIN_PASSPHRASE} characters long; nothing was created")
        if read_passphrase("The same passphrase again: ") != passphrase:
            raise OperateError("the two passphrases differ; nothing was created")
        key = init_key(key_path, settings.approvers_dir, passphrase, name, force=args.force)
        console.print(
            f"enrolled {key.identity} with key {key.key_id}\n"
            f"  private key: {key_path} (encrypted; approving takes its passphrase)\n"
            f"  public key:  {key.path}",
            markup=False,
            highlight=False,
        )
        return 0
    problems: list[str] = []
    registry = load_registry(settings.approvers_dir, problems)
    if args.format == "json":
        keys = [k.model_dump(mode="json") for k in registry.values()]
        print(json.dumps({"approvers_dir": str(settings.approvers_dir), "keys": keys, "ignored": problems}))
        return 0
    console.print(f"approvers in {settings.approvers_dir}", markup=False, highlight=False)
    table = Table("identity", "key id", "file")
    for k in sorted(registry.values(), key=lambda k: (k.identity, k.key_id)):
        table.add_row(k.identity, k.key_id, str(k.path))
    console.print(table)
    for problem in problems:
        console.print(f"ignored: {problem}", markup=False, highlight=False)
    return 0


def _replay(args: argparse.Namespace) -> int:
    """The same use case as the MCP `replay` tool, run on the same App the server builds."""
    # lazy: the MCP SDK takes about a second to import; only `serve` and `replay` need it
    from operate_mcp.server.app import App

    app = App(load_settings(), caller=os_user())
    deps = app.with_provider(required=args.fresh_context)
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
    session = asyncio.run(replay(deps, plan, caller=app.caller, triggered_by="cli", fresh_context=args.fresh_context))
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


def _doctor(args: argparse.Namespace) -> int:
    """Every setup check at once (workflows/doctor.py); exit 1 when one fails, warnings allowed."""
    report = asyncio.run(run_doctor(load_settings(), deep=args.deep))
    if args.format == "json":
        print(report.model_dump_json(indent=2))
        return 0 if report.ok else 1
    table = Table("check", "status", "detail", "fix")
    for column in table.columns[2:]:
        column.overflow = "fold"  # a path or a setting cut with "…" cannot be copied
    colour = {"ok": "green", "warn": "yellow", "fail": "red"}
    for c in report.checks:
        table.add_row(c.name, Text(c.status.value, style=colour[c.status.value]), Text(c.detail), Text(c.fix))
    Console().print(table)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="operate-mcp", description=__doc__)
    parser.add_argument("--version", action="version", version=f"operate-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP server (stdio by default)")
    add_serve_arguments(serve)
    serve.set_defaults(func=_serve)

    check = sub.add_parser("check-command", help="classify a kubectl command line: read, dry-run, mutating, forbidden")
    check.add_argument("argv", nargs=argparse.REMAINDER, help="-- kubectl ...")
    check.set_defaults(func=_check_command)

    dg = sub.add_parser(
        "diagnose",
        help="run the analyzers (no model): findings with their evidence; exit 1 when one is an error or critical",
    )
    where = dg.add_mutually_exclusive_group()
    where.add_argument("--namespace", "-n", help="the namespace to diagnose (default: the kubeconfig context's)")
    where.add_argument("--all-namespaces", "-A", action="store_true", help="every namespace, and the nodes")
    dg.add_argument("--format", choices=["text", "json"], default="text")
    dg.set_defaults(func=_diagnose)

    sessions = sub.add_parser("sessions", help="list or show proposal sessions")
    ssub = sessions.add_subparsers(dest="sessions_cmd", required=True)
    lst = ssub.add_parser("list")
    lst.add_argument("--format", choices=["text", "json"], default="text")
    show = ssub.add_parser("show")
    show.add_argument("session_id")
    show.add_argument("--format", choices=["text", "json"], default="text")
    sessions.set_defaults(func=_sessions)

    for verb, text in (
        ("approve", "approve a proposal: signs it with your enrolled approver key (asks its passphrase)"),
        ("reject", "reject a proposal (as the OS user; no key needed)"),
    ):
        p = sub.add_parser(verb, help=text)
        p.add_argument("session_id")
        p.add_argument("--justification", default="", help="why; kept in the audit log and decision record")
        add_data_dir_option(p)
        if verb == "approve":
            p.add_argument(
                "--key",
                type=Path,
                default=None,
                help="your approver key (default: ~/.config/operate-mcp/approver-key.pem)",
            )
        p.set_defaults(func=_decide)

    approver = sub.add_parser("approver", help="approver keys: create and enrol yours, list who is enrolled")
    asub = approver.add_subparsers(dest="approver_cmd", required=True)
    ainit = asub.add_parser("init", help="create your approver key (asks a passphrase) and enrol its public half")
    ainit.add_argument("--key", type=Path, default=None, help="where to write the private key")
    ainit.add_argument("--force", action="store_true", help="replace an existing key")
    alist = asub.add_parser("list", help="enrolled approvers (identity, key id, file) and ignored files with why")
    alist.add_argument("--format", choices=["text", "json"], default="text")
    approver.set_defaults(func=_approver)

    rp = sub.add_parser("replay", help="rebuild a past operation from the verified audit log as a new session")
    rp.add_argument("id", help="execution record id (run-...) or session id (opr-...)")
    rp.add_argument("--dry-run", action="store_true", help="only show what would be replayed")
    rp.add_argument("--fresh-context", action="store_true", help="analyse the intent again with the model")
    rp.add_argument("--override", action="append", metavar="KEY=VALUE", help="intent=... or namespace=...")
    rp.add_argument("--format", choices=["text", "json"], default="text")
    rp.set_defaults(func=_replay)

    dr = sub.add_parser("doctor", help="check the setup (data dir, kubectl, cluster, identity, model, knowledge)")
    dr.add_argument("--deep", action="store_true", help="also load the embedding model (takes ~10 s)")
    dr.add_argument("--format", choices=["text", "json"], default="text")
    dr.set_defaults(func=_doctor)

    add_audit_parser(sub)
    add_knowledge_parsers(sub)
    add_records_parsers(sub)
    add_observe_parsers(sub)
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
