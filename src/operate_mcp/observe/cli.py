"""`operate-mcp anomalies` and `operate-mcp watch`: what observation found, for people and scripts."""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from operate_mcp.config import add_data_dir_option, settings_for
from operate_mcp.errors import OperateError
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.observation import CATEGORIES, Anomaly
from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.records.anomaly_store import AnomalyStore
from operate_mcp.records.store import RecordStore
from operate_mcp.workflows.anomalies import list_anomalies, parse_duration, recheck_run, watch
from operate_mcp.workflows.operate import OperateDeps
from operate_mcp.workflows.sessions import SessionStore


def add_observe_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    an = sub.add_parser("anomalies", help="anomalies found after executions (and by watch), newest first")
    an.add_argument("--since", default="24h", help="a date, a time, or a look-back: 24h (default), 7d")
    an.add_argument("--category", choices=CATEGORIES)
    an.add_argument("--severity", choices=("P1", "P2", "P3"), help="minimum severity: P2 means P1 and P2")
    an.add_argument("--namespace", "-n")
    an.add_argument("--run", help="only the anomalies of this run (run-...)")
    an.add_argument("--recheck", action="store_true", help="with --run: judge that run again with today's rules")
    an.add_argument("--limit", type=int, default=50)
    an.add_argument("--format", choices=("text", "json"), default="text")
    add_data_dir_option(an)
    an.set_defaults(func=_anomalies)

    w = sub.add_parser(
        "watch", help="keep observing what recent executions touched; late regressions become anomalies of the run"
    )
    w.add_argument("--for", dest="duration", default="1h", help="how long to watch: 30m, 1h (default), 2h")
    w.add_argument("--interval", default="30s", help="how often to look: 30s (default)")
    w.add_argument("--window", default="1h", help="watch runs that finished within this window: 1h (default)")
    w.add_argument("--once", action="store_true", help="look once and exit (cron, CI)")
    add_data_dir_option(w)
    w.set_defaults(func=_watch)


def _deps(args: argparse.Namespace) -> OperateDeps:
    settings = settings_for(args)
    alerts = FailureAlerts(settings.data_dir, settings.alert_webhook_url)
    return OperateDeps(
        settings=settings,
        kubectl=Kubectl(settings),
        provider=None,
        sessions=SessionStore(settings.data_dir, settings.session_ttl_seconds),
        records=RecordStore(settings.data_dir, retention_days=settings.records_retention_days),
        alerts=alerts,
        anomalies=AnomalyStore(settings.data_dir, alerts=alerts),
    )


def anomaly_lines(a: Anomaly) -> list[str]:
    where = " ".join(x for x in (a.namespace, a.target) if x)
    lines = [
        f"{a.severity} {a.rule}{' (late)' if a.late else ''}  {a.run_id}  {a.detected_at:%Y-%m-%d %H:%M:%S}  {where}"
    ]
    lines.append(f"    expected: {a.expected}")
    lines.append(f"    actual:   {a.actual}")
    lines += [f"    evidence: {e}" for e in a.evidence[:8]]
    if a.suggested_action:
        lines.append(f"    do:       {a.suggested_action}")
    if a.similar_runs:
        lines.append(f"    similar:  {', '.join(a.similar_runs)}")
    return ["".join(ch if ch.isprintable() else " " for ch in line) for line in lines]


def _anomalies(args: argparse.Namespace) -> int:
    deps = _deps(args)
    if args.recheck:
        if not args.run:
            raise OperateError("--recheck needs --run RUN_ID: the run to judge again")
        recheck_run(deps, args.run)
    page = list_anomalies(
        deps,
        since=args.since,
        category=args.category,
        severity=args.severity,
        namespace=args.namespace,
        run_id=args.run,
        limit=args.limit,
    )
    if args.format == "json":
        print(page.model_dump_json(indent=2))
        return 0
    print(
        f"{page.total} anomal{'y' if page.total == 1 else 'ies'} since {page.since:%Y-%m-%d %H:%M} UTC"
        if page.since
        else f"{page.total} anomalies"
    )
    for a in page.anomalies:
        print("\n".join(anomaly_lines(a)))
    return 0


def _watch(args: argparse.Namespace) -> int:
    deps = _deps(args)
    duration = 0.0 if args.once else parse_duration(args.duration)
    interval = parse_duration(args.interval)
    window = timedelta(seconds=parse_duration(args.window))

    def found(anomalies: list[Anomaly]) -> None:
        for a in anomalies:
            print("\n".join(anomaly_lines(a)), flush=True)

    try:
        total = watch(deps, duration=duration, interval=interval, window=window, on_found=found)
    except KeyboardInterrupt:
        return 130
    except OperateError as exc:
        print(f"operate-mcp: {exc}", file=sys.stderr)
        return 2
    print(f"{total} late anomal{'y' if total == 1 else 'ies'} recorded")
    return 0
