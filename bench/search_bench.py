"""Run-search latency on generated records (a benchmark, not a test).

    .venv/bin/python bench/search_bench.py [--sizes 100000 1000000] [--runs 20] [--keep DIR] [--warmup-passes 1]

For each size, fills a temporary store through RecordStore.save_many (the real schema, FTS5
index and side tables; batches of 10k, synchronous=OFF for the bulk load only), then times
`RecordStore.search` - count, first page of 50 and the three facets, exactly what
`operate-mcp runs search` runs - for a few representative queries: median and p95 over --runs
runs after one warm-up (and after --warmup-passes untimed passes over every query, for a store
just opened). Opening a kept store from an older schema upgrades it in place, timed; the load average
is printed before and after the table, since a busy machine moves every figure.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus, TokenCounts
from operate_mcp.records.store import RecordStore

START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_DAYS = 90
APPS = ["checkout", "cart", "search", "payments-gw", "my-api", "worker", "redis", "postgres", "billing", "orders",
        "ingest", "auth", "catalog", "gateway", "notifier", "reports", "scheduler", "media", "profile", "pricing"]
NAMESPACES = ["shop", "payments", "db", "cache", "search", "qa", "edge", "billing", "orders", "platform",
              "staging", "prod", "data", "ml", "auth", "media", "infra", "tools", "batch", "web"]
TAGS = ["ci", "release", "hotfix", "canary", "rollback", "smoke", "security", "storage", "migration", "nightly"]
TRIGGERS = ["cli", "api", "scheduler", "mcp:claude-code", "mcp:cursor"]
VERBS = [("deploy {app} v{n}", "kubectl set image deployment/{app} app={app}:v{n}"),
         ("scale {app} to {n}", "kubectl scale deployment/{app} --replicas={n}"),
         ("restart {app}", "kubectl rollout restart deployment/{app}"),
         ("roll back {app}", "kubectl rollout undo deployment/{app}"),
         ("make {app} HA", "kubectl apply -f -"),
         ("update config of {app}", "kubectl patch configmap {app}-config")]
STATUSES = [(RunStatus.SUCCEEDED, 0.80), (RunStatus.FAILED, 0.10), (RunStatus.PARTIAL, 0.05),
            (RunStatus.ROLLED_BACK, 0.03), (RunStatus.INTERRUPTED, 0.02)]
ERRORS = ["error: timed out waiting for the condition",
          'Error from server (Forbidden): deployments.apps "{app}" is forbidden',
          'deployment "{app}" exceeded its progress deadline',
          "Back-off pulling image: ImagePullBackOff",
          "the object has been modified; please apply your changes to the latest version",
          "exceeded quota: compute-resources"]

QUERIES = [
    ("qualifiers", "status:failed namespace:payments"),
    ("qualifier + date", "status:failed after:2026-03-01"),
    ("glob + duration", "intent:deploy* duration:>300"),
    ("free text", "forbidden"),
    ("free-text prefix", "imagepull*"),
    ("free-text phrase", '"progress deadline"'),
    ("OR / NOT mix", "(status:failed OR status:partial) checkout -tag:ci"),
    ("everything (facets over all)", ""),
]


def generate(n: int, seed: int = 7) -> Iterator[ExecutionRecord]:
    rnd = random.Random(seed)
    statuses, weights = zip(*STATUSES, strict=True)
    for i in range(n):
        started = START + timedelta(seconds=rnd.uniform(0, SPAN_DAYS * 86400))
        app = rnd.choice(APPS)
        intent_t, argv_t = rnd.choice(VERBS)
        num = rnd.randint(1, 12)
        status = rnd.choices(statuses, weights)[0]
        duration = round(rnd.lognormvariate(3.0, 1.2), 2)
        argv = argv_t.format(app=app, n=num).split()
        failed = status in (RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED)
        error = rnd.choice(ERRORS).format(app=app) if failed else None
        ns = rnd.choice(NAMESPACES)
        yield ExecutionRecord.model_construct(
            id=f"run-{int(started.timestamp() * 1000):013d}-{i:08x}",
            started_at=started,
            finished_at=started + timedelta(seconds=duration),
            triggered_by=rnd.choice(TRIGGERS),
            caller=rnd.choice(["alice", "bob", "carol", "ci-bot"]),
            intent=intent_t.format(app=app, n=num),
            purpose="rollback" if status is RunStatus.ROLLED_BACK else "operate",
            params={}, parent_id=None, tags=rnd.sample(TAGS, rnd.randint(0, 2)), metadata={}, session_id=None,
            proposal_version=1, prompt_sha256=None, patterns=[], policies=[], before=None, after=None,
            commands=[CommandRecord.model_construct(
                index=1, argv=argv, exit_code=1 if failed else 0, duration_seconds=duration, timed_out=False,
                dry_run_ok=True, stdout="" if failed else f"deployment.apps/{app} configured",
                stderr=error or "")],
            outcome_checks=[], log_excerpts=[], status=status, duration_seconds=duration,
            token_usage=TokenCounts(), namespaces=[ns], resources=[f"deployment/{app}"],
            failed_step=" ".join(argv) if failed else None, error=f"exit 1: {error}" if error else None,
        )


def fill(store: RecordStore, n: int) -> float:
    t0 = time.perf_counter()
    batch: list[ExecutionRecord] = []
    for record in generate(n):
        batch.append(record)
        if len(batch) == 10_000:
            store.save_many(batch)
            batch.clear()
    if batch:
        store.save_many(batch)
    return time.perf_counter() - t0


def time_query(store: RecordStore, query: str, runs: int) -> tuple[float, float, int]:
    total = store.search(query).total  # warm-up
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.search(query)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    p95 = samples[math.ceil(0.95 * len(samples)) - 1]  # nearest rank
    return statistics.median(samples), p95, total


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def bench(size: int, runs: int, keep: Path | None, warmup_passes: int = 0) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = keep / f"runs-{size}" if keep else Path(tmp)
        t0 = time.perf_counter()
        store = RecordStore(data_dir, synchronous="OFF")
        print(f"opened in {time.perf_counter() - t0:.1f} s (including any schema upgrade)", flush=True)
        if store.count() != size:
            load_s = fill(store, size)
            print(f"\n{size:,} records: bulk load {load_s:.0f} s ({size / load_s:,.0f} records/s)", flush=True)
        db_mb = sum(p.stat().st_size for p in data_dir.glob("records.db*")) / 1e6
        print(f"database {db_mb:,.0f} MB (WAL included)")
        for _ in range(warmup_passes):
            for _, query in QUERIES:
                store.search(query)
        print(f"load average {load()}\n")
        print("| kind | query | matches | median ms | p95 ms |")
        print("|---|---|---:|---:|---:|")
        for name, query in QUERIES:
            median, p95, total = time_query(store, query, runs)
            shown = f"`{query}`" if query else "(empty)"
            print(f"| {name} | {shown} | {total:,} | {median:,.1f} | {p95:,.1f} |", flush=True)
        print(f"\nload average {load()}")
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the generated databases here")
    ap.add_argument("--warmup-passes", type=int, default=0, help="untimed passes over every query first")
    args = ap.parse_args()
    for size in args.sizes:
        bench(size, args.runs, args.keep, args.warmup_passes)


if __name__ == "__main__":
    main()
