"""`operate-mcp audit verify | checkpoint | repair`: the audit log's command line, for people and cron."""

from __future__ import annotations

import argparse
import datetime as dt
from functools import partial
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from operate_mcp.audit.checkpoint import CheckpointWitness
from operate_mcp.audit.log import AuditLog
from operate_mcp.audit.verify import ALERTS_FILE, VerifyReport, verify
from operate_mcp.config import add_data_dir_option, settings_for
from operate_mcp.errors import OperateError


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-22, got {text!r}") from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of days >= 1, got {text!r}")
    return value


def add_audit_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `audit verify`, `audit checkpoint` and `audit repair`; each sets `func(args) -> exit code`."""
    audit = subparsers.add_parser("audit", help="verify and sign the tamper-evident audit log")
    commands = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    verify_parser = commands.add_parser(
        "verify",
        help="check the hash chain and signed checkpoints; exit 1 on any problem",
        description="Check the audit log's hash chain and signed checkpoints. Exits 1 and appends to "
        f"<data-dir>/{ALERTS_FILE} when anything was edited, reordered, deleted, truncated or rewritten.",
    )
    window = verify_parser.add_mutually_exclusive_group()
    window.add_argument("--date", type=_iso_date, metavar="YYYY-MM-DD", help="one UTC day, YYYY-MM-DD")
    window.add_argument("--days", type=_positive_int, metavar="N", help="today (UTC) and the N-1 days before")
    day = "YYYY-MM-DD"
    window.add_argument("--from", dest="from_date", type=_iso_date, metavar=day, help="first UTC day of a range")
    verify_parser.add_argument("--to", dest="to_date", type=_iso_date, metavar=day, help="last UTC day of a range")
    verify_parser.add_argument("--format", choices=("text", "json"), default="text")
    verify_parser.add_argument(
        "--public-key", type=Path, metavar="PEM", help="checkpoint verification key kept outside the data dir"
    )
    verify_parser.add_argument(
        "--witness", nargs="?", const="", default=None, metavar="DIR",
        help="compare checkpoints.log with the witness's copy: DIR/<host>-checkpoints.log, or that file itself "
        "(default, and with no DIR: OPERATE_MCP_AUDIT_WITNESS_DIR when set)",
    )
    add_data_dir_option(verify_parser)
    verify_parser.set_defaults(func=partial(_run_verify, parser=verify_parser))

    checkpoint_parser = commands.add_parser(
        "checkpoint",
        help="sign the log's current size and last hash (run after executions and periodically); a copy goes to "
        "OPERATE_MCP_AUDIT_WITNESS_DIR and syslog",
    )
    checkpoint_parser.add_argument("--key", type=Path, default=None, help="Ed25519 signing key (PEM)")
    add_data_dir_option(checkpoint_parser)
    checkpoint_parser.set_defaults(func=_run_checkpoint)

    repair_parser = commands.add_parser(
        "repair", help="set aside a torn last line left by an interrupted write, and record that in the log"
    )
    repair_parser.add_argument("--actor", default="cli", help="who is repairing (recorded in the log)")
    add_data_dir_option(repair_parser)
    repair_parser.set_defaults(func=_run_repair)


def _data_dir(args: argparse.Namespace) -> Path:
    return settings_for(args).data_dir


def _fail(error: Exception) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
    return 1


def _run_verify(args: argparse.Namespace, *, parser: argparse.ArgumentParser) -> int:
    if args.to_date is not None and (args.date is not None or args.days is not None):
        parser.error("--to goes with --from, not with --date or --days")
    try:
        settings = settings_for(args)
        data_dir = settings.data_dir
        witness = Path(args.witness) if args.witness else settings.audit_witness_dir
        if args.witness == "" and witness is None:
            parser.error("--witness without a directory needs OPERATE_MCP_AUDIT_WITNESS_DIR; or pass --witness DIR")
        if args.public_key is not None and not args.public_key.is_file():
            # A typo in the command line is not tampering: say so, and write no integrity alert.
            parser.error(f"--public-key {args.public_key}: no such file; give the checkpoint key's PEM file")
        report = verify(
            data_dir,
            date=args.date,
            days=args.days,
            from_date=args.from_date,
            to_date=args.to_date,
            public_key_path=args.public_key,
            witness=witness,
        )
    except ValueError as exc:
        parser.error(str(exc))
    except OperateError as exc:
        return _fail(exc)
    if args.format == "json":
        print(report.model_dump_json(indent=2))
    else:
        _print_report(report, data_dir)
    return 0 if report.ok else 1


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def _print_report(report: VerifyReport, data_dir: Path) -> None:
    console = Console(highlight=False, soft_wrap=True)
    files = _count(len(report.files), "file")
    if report.files:
        span = report.files[0] if len(report.files) == 1 else f"{report.files[0]} … {report.files[-1]}"
        files += f" ({span})"
    summary = (
        f"{_count(report.entries_checked, 'entry', 'entries')} in {files}, "
        f"{_count(report.checkpoints_checked, 'checkpoint')}"
    )
    if report.witness is not None:
        summary += f", {report.witness_checkpoints_checked} witnessed in {report.witness}"
    if report.ok:
        upto = f"; chain intact up to seq {report.verified_up_to_seq}" if report.verified_up_to_seq else ""
        console.print(f"[green]✓ audit log verified[/green]: {escape(summary)}{upto}")
        return
    problems = _count(len(report.problems), "problem")
    console.print(f"[red]✗ audit log FAILED verification[/red]: {problems} in {escape(summary)}")
    for problem in report.problems:
        where = f"{problem.file or '-'}:{problem.line}" if problem.line is not None else (problem.file or "-")
        console.print(f"  [bold]{problem.kind}[/bold]  {escape(where)}  {escape(problem.message)}")
    if report.verified_up_to_seq is not None:
        console.print(f"entries up to seq {report.verified_up_to_seq} verify")
    console.print(f"alert appended to {escape(str(data_dir / ALERTS_FILE))}")


def _run_checkpoint(args: argparse.Namespace) -> int:
    try:
        settings = settings_for(args)
        witness = CheckpointWitness(settings.audit_witness_dir)
        checkpoint = AuditLog(settings.data_dir, signing_key_path=args.key, witness=witness).checkpoint()
    except OperateError as exc:
        return _fail(exc)
    print(checkpoint.note(), end="")
    return 0


def _run_repair(args: argparse.Namespace) -> int:
    try:
        entry = AuditLog(_data_dir(args)).repair_torn_tail(actor=args.actor)
    except OperateError as exc:
        return _fail(exc)
    if entry is None:
        print("nothing to repair: the log ends with a complete entry")
    else:
        d = entry.data
        print(
            f"moved {d['bytes']} torn bytes from {d['file']} line {d['line']} to {d['moved_to']}; "
            f"recorded as audit.repair seq {entry.seq}"
        )
    return 0
