"""The retention archive shared by the run store and the anomaly store: one gzip JSONL file per UTC day.

Both stores archive before they delete, so what leaves the database is on disk first; merging by id
makes a second run after a crash (archived, not yet deleted) write each item once.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from operate_mcp.fileio import atomic_write
from operate_mcp.records.models import RecordError


def write_archive(path: Path, lines: Iterable[str]) -> None:
    """Merge into the day's archive atomically: temp file, fsync, rename, fsync the directory."""
    merged = archive_lines(path)
    for line in lines:
        merged[json.loads(line)["id"]] = line
    body = "".join(f"{line}\n" for line in merged.values()).encode("utf-8")
    atomic_write(path, gzip.compress(body, mtime=0))


def archived_ids(path: Path) -> set[str]:
    """The ids already in an archive file (none when it does not exist yet)."""
    return set(archive_lines(path))


def archive_lines(path: Path) -> dict[str, str]:
    """An archive's lines by id. One that cannot be read stops retention with its name: merging into it
    would lose what it holds, and deleting without archiving would lose the rest."""
    if not path.exists():
        return {}
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            return {str(json.loads(line)["id"]): line.rstrip("\n") for line in fh if line.strip()}
    except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
        raise RecordError(
            f"retention cannot merge into the archive {path}: it is not readable gzip JSON lines with an id "
            f"({type(exc).__name__}: {exc}); move it aside (nothing was deleted) and run retention again"
        ) from exc


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def retention_cutoff(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC `days` days ago: what started (or was detected) before it is past retention."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    return day_start(today - timedelta(days=days))
