"""`operate-mcp runs search | show | summary | prune` and `operate-mcp metrics`: the run store for people."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from operate_mcp.config import add_data_dir_option, settings_for
from operate_mcp.errors import OperateError
from operate_mcp.records.anomaly_store import AnomalyRetentionResult, AnomalyStore
from operate_mcp.records.context_view import log_analysis_lines, snapshot_lines
from operate_mcp.records.metrics import CategoryMetrics, IntentMetrics, Metrics, compute_metrics, today
from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.query import QuerySyntaxError
from operate_mcp.records.store import MAX_PER_PAGE, RecordStore, SearchPage
from operate_mcp.records.summary import RunSummary, human_duration

_STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.ROLLED_BACK: "cyan",
    RunStatus.RUNNING: "blue",
    RunStatus.PARTIAL: "yellow",
    RunStatus.FAILED: "red",
    RunStatus.INTERRUPTED: "red",
}


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2026-11-22, got {text!r}") from None


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low or (high is not None and value > high):
            span = f"between {low} and {high}" if high is not None else f"{low} or more"
            raise argparse.ArgumentTypeError(f"expected a whole number {span}, got {text!r}")
        return value

    return parse


def add_records_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `runs ...` and `metrics`; each sets `func(args) -> exit code` (0 ok, 1 error, 2 bad query)."""
    runs = subparsers.add_parser("runs", help="search, show and summarise execution records")
    commands = runs.add_subparsers(dest="runs_command", required=True, metavar="COMMAND")

    search = commands.add_parser(
        "search",
        help="search runs: status:failed intent:deploy* namespace:shop duration:>60 timeout ...",
        description="Search execution records, newest first. See docs/search.md for the query language.",
    )
    search.add_argument("query", nargs="?", default="", help='e.g. "status:failed after:2026-01-01 -tag:ci"')
    search.add_argument("--format", choices=("text", "json", "csv"), default="text",
                        help="text: one page as a table; json: the page with facets; csv: every match")
    search.add_argument("--page", type=_bounded(1), default=1)
    search.add_argument("--per-page", type=_bounded(1, MAX_PER_PAGE), default=50)
    add_data_dir_option(search)
    search.set_defaults(func=_run_search)

    show = commands.add_parser("show", help="the full record of one run")
    show.add_argument("id", help="run id, e.g. run-1767225600000-1a2b3c4d")
    show.add_argument("--format", choices=("text", "json"), default="text")
    add_data_dir_option(show)
    show.set_defaults(func=_run_show)

    summary = commands.add_parser("summary", help="one line, key events, errors and suggestions for one run")
    summary.add_argument("id")
    summary.add_argument("--format", choices=("text", "json"), default="text")
    add_data_dir_option(summary)
    summary.set_defaults(func=_run_summary)

    prune = commands.add_parser(
        "prune", help="archive runs and anomalies older than the retention period to compressed JSONL, then delete them"
    )
    prune.add_argument("--days", type=_bounded(0), default=None,
                       help="keep this many days (default: OPERATE_MCP_RECORDS_RETENTION_DAYS, 30)")
    add_data_dir_option(prune)
    prune.set_defaults(func=_run_prune)

    metrics = subparsers.add_parser(
        "metrics", help="execution counts, success rate per category, durations, failing steps",
        description="Metrics of the runs that started in a window (default: today, UTC) and match a search query "
        "(docs/search.md). Windows older than the retention are answered from the daily aggregates.",
    )
    metrics.add_argument("-q", "--query", default="", help='choose the runs: e.g. "category:update namespace:shop"')
    metrics.add_argument("--from", dest="from_date", type=_iso_date, metavar="YYYY-MM-DD",
                         help="first UTC day (without --from and --to: today)")
    metrics.add_argument("--to", dest="to_date", type=_iso_date, metavar="YYYY-MM-DD", help="last UTC day (included)")
    metrics.add_argument("--by-intent", action="store_true", help="break the numbers down per intent")
    metrics.add_argument("--format", choices=("text", "json"), default="text")
    add_data_dir_option(metrics)
    metrics.set_defaults(func=_run_metrics)


def _store(args: argparse.Namespace) -> RecordStore:
    settings = settings_for(args)
    return RecordStore(settings.data_dir, retention_days=settings.records_retention_days)


def _fail(error: Exception) -> int:
    Console(stderr=True, highlight=False, soft_wrap=True).print(f"[red]error:[/red] {escape(str(error))}")
    return 2 if isinstance(error, QuerySyntaxError) else 1


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _status(status: RunStatus) -> Text:
    return Text(status.value, style=_STATUS_STYLE[status])


def _run_search(args: argparse.Namespace) -> int:
    try:
        with _store(args) as store:
            if args.format == "csv":
                print(store.export(args.query, "csv"), end="")
                return 0
            page = store.search(args.query, page=args.page, per_page=args.per_page)
    except OperateError as exc:
        return _fail(exc)
    if args.format == "json":
        print(page.model_dump_json(indent=2))
    else:
        _print_page(page)
    return 0


def _print_page(page: SearchPage) -> None:
    console = _console()
    if page.total == 0:
        console.print("no runs match")
        return
    first = (page.page - 1) * page.per_page + 1
    shown = f"{first}-{first + len(page.items) - 1}" if page.items else "none"
    console.print(f"{page.total} run{'s' if page.total != 1 else ''} match; showing {shown} "
                  f"(page {page.page} of {page.pages})")
    table = Table("id", "started (UTC)", "status", "duration", "intent", "namespaces", box=None, pad_edge=False)
    for row in page.items:
        table.add_row(
            Text(row.id), Text(f"{row.started_at:%Y-%m-%d %H:%M}"), _status(row.status),
            Text(human_duration(row.duration_seconds)), Text(row.intent), Text(", ".join(row.namespaces)),
        )
    console.print(table)
    for name, counts in (("status", page.facets.status), ("intent", page.facets.intent),
                         ("namespace", page.facets.namespace)):
        if counts:
            console.print(Text(f"{name}: " + ", ".join(f"{c.value} {c.count}" for c in counts), style="dim"))


def _run_show(args: argparse.Namespace) -> int:
    try:
        with _store(args) as store:
            record = store.get(args.id)
    except OperateError as exc:
        return _fail(exc)
    if args.format == "json":
        print(record.model_dump_json(indent=2))
    else:
        _print_record(record)
    return 0


def _print_record(record: ExecutionRecord) -> None:
    console = _console()
    head = Text(f"{record.id}  ")
    head.append_text(_status(record.status))
    head.append(f"  {human_duration(record.duration_seconds)}")
    console.print(head)
    fields = [
        ("intent", record.intent),
        ("started", f"{record.started_at:%Y-%m-%d %H:%M:%S} UTC"),
        ("finished", f"{record.finished_at:%Y-%m-%d %H:%M:%S} UTC" if record.finished_at else "-"),
        ("triggered by", f"{record.triggered_by} ({record.caller})"),
        ("purpose", record.purpose + (f" of {record.parent_id}" if record.parent_id else "")),
        ("session", (record.session_id or "-")
         + (f" (proposal v{record.proposal_version})" if record.proposal_version is not None else "")),
        ("namespaces", ", ".join(record.namespaces) or "-"),
        ("resources", ", ".join(record.resources) or "-"),
        ("tags", ", ".join(record.tags) or "-"),
        ("tokens", f"in {record.token_usage.input}, out {record.token_usage.output}, cache write "
                   f"{record.token_usage.cache_write}, cache read {record.token_usage.cache_read}"),
    ]
    if record.failed_step:
        fields.append(("failed step", record.failed_step))
    if record.error:
        fields.append(("error", record.error))
    for name, value in fields:
        console.print(Text(f"{name:>13}: ", style="dim").append(value, style=""))
    for c in record.commands:
        mark = Text("ok ", style="green") if c.ok else Text("FAIL ", style="red")
        console.print(Text(f"  {c.index}. ").append_text(mark).append(
            f"{' '.join(c.argv)}  (exit {c.exit_code}, {human_duration(c.duration_seconds)})"))
        for stream in (c.stdout, c.stderr):
            for line in stream.strip().splitlines()[-5:]:
                console.print(Text(f"       {line}", style="dim"))
    for check in record.outcome_checks:
        mark = Text("ok ", style="green") if check.ok else Text("FAIL ", style="red")
        console.print(Text("  check ").append_text(mark).append(f"{check.name}: {check.detail}"))
    context = [*snapshot_lines("before", record.before), *snapshot_lines("after", record.after)]
    if record.log_analysis:
        context += ["logs", *log_analysis_lines(record.log_analysis)]
    for line in context:
        console.print(line, markup=False, highlight=False)


def _run_summary(args: argparse.Namespace) -> int:
    try:
        with _store(args) as store:
            summary = store.summary(args.id)
    except OperateError as exc:
        return _fail(exc)
    if args.format == "json":
        print(summary.model_dump_json(indent=2))
    else:
        _print_summary(summary)
    return 0


def _print_summary(summary: RunSummary) -> None:
    console = _console()
    console.print(Text(f"{summary.mark} {summary.one_line}", style="bold"))
    if summary.first_error:
        console.print(Text("first error: ", style="dim").append(summary.first_error))
    for title, lines in (("key events", summary.key_events), ("errors", summary.errors),
                         ("error templates", summary.top_templates), ("anomalies", summary.anomalies),
                         ("suggestions", summary.suggestions)):
        if lines:
            console.print(Text(f"{title}:", style="dim"))
            for line in lines:
                console.print(Text(f"  - {line}"))


def _run_prune(args: argparse.Namespace) -> int:
    now = dt.datetime.now(dt.UTC)  # one moment for both stores, so runs and their anomalies share the cutoff
    try:
        with _store(args) as store:
            result = store.apply_retention(args.days, now=now)
            days = store.retention_days if args.days is None else args.days
            data_dir = store.data_dir
    except OperateError as exc:
        return _fail(exc)
    console = _console()
    if not result.deleted:
        console.print(f"nothing to prune: no runs started before {result.cutoff:%Y-%m-%d %H:%M} UTC")
    else:
        console.print(f"archived and deleted {result.deleted} run{'s' if result.deleted != 1 else ''} started before "
                      f"{result.cutoff:%Y-%m-%d %H:%M} UTC into {len(result.files)} file(s):")
        for path in result.files:
            console.print(Text(f"  {path}"))
    try:
        with AnomalyStore(data_dir) as anomalies:
            pruned = anomalies.apply_retention(days, now=now)
    except OperateError as exc:
        return _fail(exc)
    _print_anomaly_prune(console, pruned)
    return 0


def _print_anomaly_prune(console: Console, result: AnomalyRetentionResult) -> None:
    if not result.deleted and not result.yaml_removed:
        console.print(f"nothing to prune: no anomalies detected before {result.cutoff:%Y-%m-%d %H:%M} UTC")
    elif result.deleted:
        console.print(f"archived and deleted {result.deleted} anomal{'ies' if result.deleted != 1 else 'y'} detected "
                      f"before {result.cutoff:%Y-%m-%d %H:%M} UTC into {len(result.files)} file(s):")
        for path in result.files:
            console.print(Text(f"  {path}"))
    if result.yaml_removed:
        console.print(f"removed {result.yaml_removed} anomaly YAML file{'s' if result.yaml_removed != 1 else ''}")


def _run_metrics(args: argparse.Namespace) -> int:
    if args.from_date and args.to_date and args.from_date > args.to_date:
        return _fail(OperateError(f"--from {args.from_date} is after --to {args.to_date}"))
    start, end = args.from_date, args.to_date
    if start is None and end is None:
        start = end = today()
    try:
        with _store(args) as store:
            metrics = compute_metrics(store, start=start, end=end, by_intent=args.by_intent, query=args.query)
    except OperateError as exc:
        return _fail(exc)
    if args.format == "json":
        print(json.dumps(metrics.model_dump(mode="json"), indent=2))
    else:
        _print_metrics(metrics)
    return 0


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate * 100:.1f}%"


def _secs(value: float | None) -> str:
    return "-" if value is None else human_duration(value)


def _figures_table(label: str, rows: list[tuple[str, CategoryMetrics | IntentMetrics]]) -> Table:
    """One row of figures per category or intent: the two breakdowns share their columns."""
    table = Table(label, "total", "ok", "failed", "rolled back", "success", "avg", "p95", box=None)
    for name, f in rows:
        table.add_row(Text(name), str(f.total), str(f.succeeded), str(f.failed), str(f.rolled_back),
                      _pct(f.success_rate), _secs(f.avg_duration_seconds), _secs(f.p95_duration_seconds))
    return table


def _print_metrics(m: Metrics) -> None:
    console = _console()
    window = f"{m.start:%Y-%m-%d} .. " if m.start else "all time .. "
    window += f"{m.end - dt.timedelta(seconds=1):%Y-%m-%d}" if m.end else "now"
    head = Text(f"executions {window}", style="bold")
    if m.query:
        head.append(f"  matching {m.query}", style="")
    console.print(head)
    if m.source != "records":
        console.print(Text(f"  source: {m.source}", style="yellow"))
    console.print(f"  total {m.total}: {m.succeeded} succeeded, {m.failed} failed, {m.rolled_back} rolled back"
                  f"; success rate {_pct(m.success_rate)}")
    console.print(f"  duration: avg {_secs(m.avg_duration_seconds)}, p95 {_secs(m.p95_duration_seconds)}")
    if m.by_category:
        console.print(_figures_table("category", [(c.category, c) for c in m.by_category]))
    if m.by_intent:
        console.print(_figures_table("intent", [(i.intent, i) for i in m.by_intent]))
    if m.failing_steps:
        console.print(Text("steps that fail most:", style="dim"))
        for s in m.failing_steps:
            line = Text(f"  {s.failures:>4}  {s.step}")
            if s.example:
                line.append(f"  (e.g. {s.example})", style="dim")
            console.print(line)
    for note in m.notes:
        console.print(Text(f"note: {note}", style="yellow"))
