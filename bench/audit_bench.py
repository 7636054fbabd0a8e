"""Audit verify throughput next to raw SHA-256 over the same bytes (a benchmark, not a test).

    .venv/bin/python bench/audit_bench.py [--entries 100000]

Writes a log with AuditLog.append (so the entries are real), then times `verify` over it and
hashlib.sha256 over the same file bytes, and prints MB/s and entries/s for both.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from operate_mcp.audit.log import AuditLog
from operate_mcp.audit.verify import verify


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        log = AuditLog(data_dir)
        start = datetime(2026, 11, 1, tzinfo=UTC)
        t0 = time.perf_counter()
        for i in range(args.entries):
            now = start + timedelta(seconds=i * 20)  # ~4300 entries a day: the chain crosses day files
            log.append("execution.step", actor="bench", session_id="opr-1767225600000-1a2b3c4d",
                       data={"index": i, "argv": ["kubectl", "scale", "deployment/api", f"--replicas={i % 9}",
                                                  "-n", "shop"], "exit_code": 0, "duration_seconds": 0.42},
                       now=now)
        write_s = time.perf_counter() - t0
        log.checkpoint(now=start + timedelta(seconds=args.entries * 20))
        files = sorted((data_dir / "audit").glob("*.jsonl"))
        raw = b"".join(f.read_bytes() for f in files)
        mb = len(raw) / 1e6

        t0 = time.perf_counter()
        report = verify(data_dir, alert=False)
        verify_s = time.perf_counter() - t0
        assert report.ok, report.problems

        t0 = time.perf_counter()
        for f in files:
            hashlib.sha256(f.read_bytes()).hexdigest()
        sha_file_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for line in raw.splitlines():
            hashlib.sha256(line).digest()
        sha_line_s = time.perf_counter() - t0

    print(f"entries: {args.entries:,} in {len(files)} day files, {mb:.1f} MB")
    print(f"append (fsync each): {args.entries / write_s:,.0f} entries/s")
    print(f"audit verify:        {verify_s:.2f} s  {mb / verify_s:8.1f} MB/s  {args.entries / verify_s:,.0f} entries/s")
    print(f"sha256 per file:     {sha_file_s:.3f} s  {mb / sha_file_s:8.1f} MB/s")
    print(f"sha256 per line:     {sha_line_s:.3f} s  {mb / sha_line_s:8.1f} MB/s  "
          f"{args.entries / sha_line_s:,.0f} lines/s")


if __name__ == "__main__":
    main()
