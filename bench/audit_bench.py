"""Audit verify throughput next to raw SHA-256 over the same bytes (a benchmark, not a test).

    .venv/bin/python bench/audit_bench.py [--entries 100000] [--runs 5] [--keep DIR]

Writes a log with AuditLog.append (so the entries are real), checkpoints it, then times `verify`
over it --runs times (median and best) next to hashlib.sha256 over the same file bytes, and prints
MB/s and entries/s for both, with the load average (the machine is shared). `--keep DIR` writes
the log there once and reuses it on later runs. `--entry-by-entry` also times the slower check that
parses and re-serialises every entry (what verify falls back to when something is wrong).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operate_mcp.audit.log import AuditLog
from operate_mcp.audit.verify import verify

verify_module = importlib.import_module("operate_mcp.audit.verify")


def write_log(data_dir: Path, entries: int) -> float:
    log = AuditLog(data_dir)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    for i in range(entries):
        now = start + timedelta(seconds=i * 20)  # ~4300 entries a day: the chain crosses day files
        log.append("execution.step", actor="bench", session_id="opr-1767225600000-1a2b3c4d",
                   data={"index": i, "argv": ["kubectl", "scale", "deployment/api", f"--replicas={i % 9}",
                                              "-n", "shop"], "exit_code": 0, "duration_seconds": 0.42},
                   now=now)
    write_s = time.perf_counter() - t0
    log.checkpoint(now=start + timedelta(seconds=entries * 20))
    return write_s


def timed(fn: Callable[[], object], runs: int, cpu: list[float] | None = None) -> list[float]:
    """Wall-clock seconds of each run; with `cpu`, this process's CPU seconds too (less sensitive to a
    shared machine's load than wall time)."""
    samples = []
    for _ in range(runs):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return samples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="write the log here once and reuse it")
    ap.add_argument("--entry-by-entry", action="store_true", help="also time the entry-by-entry check")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.keep / f"audit-{args.entries}" if args.keep else Path(tmp)
        write_s = None
        if not (data_dir / "audit" / "checkpoints.log").exists():
            write_s = write_log(data_dir, args.entries)
        files = sorted((data_dir / "audit").glob("*.jsonl"))
        raw = b"".join(f.read_bytes() for f in files)
        mb = len(raw) / 1e6
        report = verify(data_dir, alert=False)
        assert report.ok and report.entries_checked == args.entries, report.problems

        def verify_all() -> None:
            verify(data_dir, alert=False)

        def sha_files() -> None:
            for f in files:
                hashlib.sha256(f.read_bytes()).hexdigest()

        def sha_lines() -> None:
            for line in raw.splitlines():
                hashlib.sha256(line).digest()

        load_before = os.getloadavg()[0]
        verify_cpu: list[float] = []
        sha_line_cpu: list[float] = []
        verify_s = timed(verify_all, args.runs, verify_cpu)
        sha_file_s = timed(sha_files, args.runs)
        sha_line_s = timed(sha_lines, args.runs, sha_line_cpu)
        slow_s: list[float] = []
        if args.entry_by_entry:
            verify_module._FAST_PATH = False
            slow_s = timed(verify_all, max(1, args.runs // 2))
            verify_module._FAST_PATH = True
        load_after = os.getloadavg()[0]

    n = args.entries
    med, best = statistics.median(verify_s), min(verify_s)
    print(f"entries: {n:,} in {len(files)} day files, {mb:.1f} MB; load average {load_before:.2f} -> {load_after:.2f}")
    if write_s is not None:
        print(f"append (fsync each): {n / write_s:,.0f} entries/s")
    print(f"audit verify:        median {med:.3f} s  {mb / med:7.1f} MB/s  {n / med:,.0f} entries/s"
          f"  (best {mb / best:.1f} MB/s, {args.runs} runs; CPU time {mb / statistics.median(verify_cpu):.1f} MB/s)")
    if slow_s:
        slow = statistics.median(slow_s)
        print(f"entry by entry:      median {slow:.3f} s  {mb / slow:7.1f} MB/s  {n / slow:,.0f} entries/s")
    sf, sl = statistics.median(sha_file_s), statistics.median(sha_line_s)
    print(f"sha256 per file:     median {sf:.3f} s  {mb / sf:7.1f} MB/s")
    print(f"sha256 per line:     median {sl:.3f} s  {mb / sl:7.1f} MB/s  {n / sl:,.0f} lines/s"
          f"  (CPU time {mb / statistics.median(sha_line_cpu):.1f} MB/s)")


if __name__ == "__main__":
    main()
