"""The run store: execution records in SQLite (WAL) with an FTS5 index, search, export and retention.

One small `runs` row per record holds the columns the search qualifiers filter on; the full
record, as JSON, sits in `run_records` under the same `seq`, so filters and facets never read it
and a page reads only its own records. Tags, namespaces and resources live in small side tables,
so `tag:ci` is an index lookup.
Free text (intent, command output, log excerpts, errors) is in the `runs_fts` FTS5 table, whose
rowid is the run's `seq`.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from operate_mcp.fileio import atomic_write
from operate_mcp.records.models import ExecutionRecord, RecordError, RecordNotFound, RunStatus
from operate_mcp.records.query import CompiledQuery, compile_query, fold
from operate_mcp.records.summary import RunSummary, summarize

SCHEMA_VERSION = 2
DB_NAME = "records.db"
ARCHIVE_DIR = "archive"
MAX_PER_PAGE = 500

# Each entry upgrades the schema from version i to i + 1; never edit one that has shipped.
# The three wide indexes cover what a search reads into temp.hits (seq, started_at, status, intent)
# for the common filters, so `intent:deploy* status:failed` never touches the table rows.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE runs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        started_at REAL NOT NULL,
        finished_at REAL,
        status TEXT NOT NULL,
        intent TEXT NOT NULL COLLATE NOCASE,
        triggered_by TEXT NOT NULL COLLATE NOCASE,
        caller TEXT NOT NULL COLLATE NOCASE,
        purpose TEXT NOT NULL COLLATE NOCASE,
        parent_id TEXT COLLATE NOCASE,
        session_id TEXT COLLATE NOCASE,
        duration_seconds REAL NOT NULL,
        failed_step TEXT COLLATE NOCASE
    );
    CREATE TABLE run_records (seq INTEGER PRIMARY KEY, record TEXT NOT NULL);
    CREATE INDEX runs_started ON runs (started_at, status, intent);
    CREATE INDEX runs_status ON runs (status, started_at, intent);
    CREATE INDEX runs_intent ON runs (intent, status, duration_seconds, started_at);
    CREATE INDEX runs_triggered_by ON runs (triggered_by);
    CREATE INDEX runs_duration ON runs (duration_seconds);
    CREATE INDEX runs_parent ON runs (parent_id);
    CREATE INDEX runs_session ON runs (session_id);
    CREATE INDEX runs_failed_step ON runs (failed_step);
    CREATE TABLE run_tags (run INTEGER NOT NULL, tag TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (tag, run))
        WITHOUT ROWID;
    CREATE INDEX run_tags_run ON run_tags (run);
    CREATE TABLE run_namespaces (
        run INTEGER NOT NULL, namespace TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (namespace, run)
    ) WITHOUT ROWID;
    CREATE INDEX run_namespaces_run ON run_namespaces (run);
    CREATE TABLE run_resources (
        run INTEGER NOT NULL,
        ref TEXT NOT NULL COLLATE NOCASE,
        name TEXT NOT NULL COLLATE NOCASE,
        PRIMARY KEY (ref, run)
    ) WITHOUT ROWID;
    CREATE INDEX run_resources_name ON run_resources (name, run);
    CREATE INDEX run_resources_run ON run_resources (run);
    CREATE VIRTUAL TABLE runs_fts USING fts5 (intent, output, logs, error, tokenize = 'unicode61 remove_diacritics 2');
    """,
    # 2: qualifier values compare Unicode case-folded (query.fold, registered as search_fold): NOCASE folds
    # ASCII only. Folded copies of the free-form columns, their indexes, and tags stored folded.
    """
    ALTER TABLE runs ADD COLUMN intent_key TEXT NOT NULL DEFAULT '' COLLATE NOCASE;
    ALTER TABLE runs ADD COLUMN triggered_by_key TEXT NOT NULL DEFAULT '' COLLATE NOCASE;
    ALTER TABLE runs ADD COLUMN caller_key TEXT NOT NULL DEFAULT '' COLLATE NOCASE;
    ALTER TABLE runs ADD COLUMN failed_step_key TEXT COLLATE NOCASE;
    UPDATE runs SET intent_key = search_fold(intent), triggered_by_key = search_fold(triggered_by),
        caller_key = search_fold(caller), failed_step_key = search_fold(failed_step);
    CREATE INDEX runs_intent_key ON runs (intent_key, status, duration_seconds, started_at, intent);
    DROP INDEX runs_triggered_by;
    CREATE INDEX runs_triggered_by_key ON runs (triggered_by_key);
    DROP INDEX runs_failed_step;
    CREATE INDEX runs_failed_step_key ON runs (failed_step_key);
    CREATE TABLE run_tags_folded (run INTEGER NOT NULL, tag TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (tag, run))
        WITHOUT ROWID;
    INSERT OR IGNORE INTO run_tags_folded (run, tag) SELECT run, search_fold(tag) FROM run_tags;
    DROP TABLE run_tags;
    ALTER TABLE run_tags_folded RENAME TO run_tags;
    CREATE INDEX run_tags_run ON run_tags (run);
    """,
)

_UPSERT = """
INSERT INTO runs (id, started_at, finished_at, status, intent, triggered_by, caller, purpose, parent_id,
                  session_id, duration_seconds, failed_step, intent_key, triggered_by_key, caller_key, failed_step_key)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    started_at = excluded.started_at, finished_at = excluded.finished_at, status = excluded.status,
    intent = excluded.intent, triggered_by = excluded.triggered_by, caller = excluded.caller,
    purpose = excluded.purpose, parent_id = excluded.parent_id, session_id = excluded.session_id,
    duration_seconds = excluded.duration_seconds, failed_step = excluded.failed_step,
    intent_key = excluded.intent_key, triggered_by_key = excluded.triggered_by_key,
    caller_key = excluded.caller_key, failed_step_key = excluded.failed_step_key
RETURNING seq
"""
_DELETE_SIDE = (
    "DELETE FROM run_records WHERE seq = ?",
    "DELETE FROM run_tags WHERE run = ?",
    "DELETE FROM run_namespaces WHERE run = ?",
    "DELETE FROM run_resources WHERE run = ?",
    "DELETE FROM runs_fts WHERE rowid = ?",
)
# Facets show the 10 most frequent values. `{where}` and `{ctes}` below are always query.py's output:
# constant SQL fragments; user values are bound parameters.
_HITS = "CREATE TEMP TABLE hits AS {ctes}SELECT seq, started_at, status, intent FROM runs WHERE {where}"
_HITS_PAGE = (  # sort the small hit rows first, then read only the page's records
    "SELECT r.record FROM (SELECT seq, started_at FROM temp.hits ORDER BY started_at DESC, seq DESC LIMIT ? OFFSET ?)"
    " AS h JOIN run_records AS r ON r.seq = h.seq ORDER BY h.started_at DESC, h.seq DESC"
)
_HITS_FACETS = {
    "status": "SELECT status, COUNT(*) AS n FROM temp.hits GROUP BY status ORDER BY n DESC, status",
    "intent": "SELECT intent, COUNT(*) AS n FROM temp.hits GROUP BY intent COLLATE NOCASE"
    " ORDER BY n DESC, intent COLLATE NOCASE LIMIT 10",
    "namespace": "SELECT ns.namespace, COUNT(*) AS n FROM temp.hits AS h JOIN run_namespaces AS ns ON ns.run = h.seq"
    " GROUP BY ns.namespace ORDER BY n DESC, ns.namespace LIMIT 10",
}
_ALL_FACETS = {
    "status": "SELECT status, COUNT(*) AS n FROM runs GROUP BY status ORDER BY n DESC, status",
    "intent": "SELECT intent, COUNT(*) AS n FROM runs GROUP BY intent ORDER BY n DESC, intent LIMIT 10",
    "namespace": "SELECT namespace, COUNT(*) AS n FROM run_namespaces GROUP BY namespace"
    " ORDER BY n DESC, namespace LIMIT 10",
}
_EXPORT_BATCH = (
    "{ctes}SELECT runs.started_at, runs.seq, r.record FROM runs JOIN run_records AS r ON r.seq = runs.seq"
    " WHERE ({where}) AND (runs.started_at, runs.seq) < (?, ?)"
    " ORDER BY runs.started_at DESC, runs.seq DESC LIMIT ?"
)
_NEWEST_PAGE = (  # walks the started_at index backwards and reads only the page's records
    "SELECT r.record FROM run_records AS r JOIN ("
    "SELECT seq, started_at FROM runs ORDER BY started_at DESC, seq DESC LIMIT ? OFFSET ?"
    ") AS page ON r.seq = page.seq ORDER BY page.started_at DESC, page.seq DESC"
)


class RunRow(BaseModel):
    """One search hit: enough to list and pick a run; `runs show <id>` has the rest."""

    id: str
    started_at: datetime
    finished_at: datetime | None
    status: RunStatus
    intent: str
    triggered_by: str
    caller: str
    duration_seconds: float
    namespaces: list[str]
    tags: list[str]
    failed_step: str | None
    error: str | None


class FacetCount(BaseModel):
    value: str
    count: int


class Facets(BaseModel):
    """Counts over every match, not just the page: most frequent first."""

    status: list[FacetCount] = Field(default_factory=list)
    intent: list[FacetCount] = Field(default_factory=list)
    namespace: list[FacetCount] = Field(default_factory=list)


class SearchPage(BaseModel):
    query: str
    total: int
    page: int
    per_page: int
    items: list[RunRow]
    facets: Facets

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


class RetentionResult(BaseModel):
    cutoff: datetime
    archived: int
    deleted: int
    files: list[Path]


def _fold_or_none(text: str | None) -> str | None:
    return None if text is None else fold(text)


def _epoch(moment: datetime | None) -> float | None:
    return None if moment is None else moment.timestamp()


def _fts_columns(record: ExecutionRecord) -> tuple[str, str, str, str]:
    output = "\n".join(
        part for c in record.commands for part in (" ".join(c.argv), c.stdout, c.stderr) if part
    )
    logs = "\n".join([*record.log_excerpts, *(f"{c.name}: {c.detail}" for c in record.outcome_checks)])
    error = "\n".join(x for x in (record.failed_step, record.error) if x)
    return record.intent, output, logs, error


def _resource_rows(seq: int, record: ExecutionRecord) -> list[tuple[int, str, str]]:
    rows = []
    for ref in record.resources:
        kind, _, name = ref.partition("/")
        rows.append((seq, f"{kind.lower()}/{name}" if name else ref, name or ref))
    return rows


def read_archive(path: Path) -> list[ExecutionRecord]:
    """The records in one archive file (gzip-compressed JSONL, one record per line)."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [ExecutionRecord.model_validate_json(line) for line in fh if line.strip()]


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class RecordStore:
    """SQLite-backed record store; safe to share between threads of one process and between processes."""

    def __init__(self, data_dir: Path, *, retention_days: int = 30, synchronous: str = "FULL") -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self.retention_days = retention_days
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        with contextlib.suppress(OSError):
            os.chmod(self.path, 0o600)
        self._db.execute("PRAGMA journal_mode = WAL")
        if synchronous not in ("OFF", "NORMAL", "FULL"):
            raise ValueError(f"synchronous must be OFF, NORMAL or FULL, not {synchronous!r}")
        self._db.execute(f"PRAGMA synchronous = {synchronous}")
        self._db.execute("PRAGMA cache_size = -32000")  # 32 MB of page cache: facets over large stores
        self._db.execute("PRAGMA temp_store = MEMORY")  # search's temp.hits never touches the disk
        self._db.create_function("search_fold", 1, _fold_or_none, deterministic=True)  # for migration 2
        self._migrate()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA optimize")  # refresh planner statistics where they went stale
            self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a busy db."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._transaction() as db:
            version: int = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RecordError(
                    f"{self.path} has schema version {version}, newer than this operate-mcp understands "
                    f"({SCHEMA_VERSION}); upgrade operate-mcp"
                )
            for target in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1:d}")

    # -- writing -----------------------------------------------------------------------------------

    def save(self, record: ExecutionRecord) -> None:
        """Insert, or replace the record with the same id; one transaction, so readers never see half."""
        self.save_many([record])

    def save_many(self, records: Iterable[ExecutionRecord]) -> int:
        """Save several records in one transaction (imports, benchmarks); returns how many."""
        count = 0
        with self._transaction() as db:
            for record in records:
                self._write(db, record)
                count += 1
        return count

    @staticmethod
    def _write(db: sqlite3.Connection, record: ExecutionRecord) -> None:
        seq: int = db.execute(
            _UPSERT,
            (
                record.id,
                record.started_at.timestamp(),
                _epoch(record.finished_at),
                record.status.value,
                record.intent,
                record.triggered_by,
                record.caller,
                record.purpose,
                record.parent_id,
                record.session_id,
                record.duration_seconds,
                record.failed_step,
                fold(record.intent),
                fold(record.triggered_by),
                fold(record.caller),
                None if record.failed_step is None else fold(record.failed_step),
            ),
        ).fetchone()[0]
        for statement in _DELETE_SIDE:
            db.execute(statement, (seq,))
        db.execute("INSERT INTO run_records (seq, record) VALUES (?, ?)", (seq, record.model_dump_json()))
        db.executemany("INSERT OR IGNORE INTO run_tags (run, tag) VALUES (?, ?)", [(seq, fold(t)) for t in record.tags])
        db.executemany(
            "INSERT INTO run_namespaces (run, namespace) VALUES (?, ?)", [(seq, n) for n in record.namespaces]
        )
        db.executemany(
            "INSERT OR IGNORE INTO run_resources (run, ref, name) VALUES (?, ?, ?)", _resource_rows(seq, record)
        )
        db.execute(
            "INSERT INTO runs_fts (rowid, intent, output, logs, error) VALUES (?, ?, ?, ?, ?)",
            (seq, *_fts_columns(record)),
        )

    # -- reading -----------------------------------------------------------------------------------

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def get(self, record_id: str) -> ExecutionRecord:
        rows = self._read(
            "SELECT r.record FROM runs JOIN run_records AS r ON r.seq = runs.seq WHERE runs.id = ?", (record_id,)
        )
        if not rows:
            raise RecordNotFound(
                f"no run {record_id!r} in {self.path}; find ids with `operate-mcp runs search` "
                "(runs older than the retention period are in the archive directory)"
            )
        return ExecutionRecord.model_validate_json(str(rows[0][0]))

    def count(self) -> int:
        return int(str(self._read("SELECT COUNT(*) FROM runs")[0][0]))

    def search(self, query: str = "", *, page: int = 1, per_page: int = 50) -> SearchPage:
        """Newest first; `total` and `facets` cover every match, `items` just the page asked for."""
        if page < 1:
            raise RecordError(f"page must be 1 or more, not {page}")
        if not 1 <= per_page <= MAX_PER_PAGE:
            raise RecordError(f"per_page must be between 1 and {MAX_PER_PAGE}, not {per_page}")
        compiled = compile_query(query)
        offset = (page - 1) * per_page
        with self._lock:
            self._db.execute("BEGIN")  # one snapshot: total, page and facets describe the same rows
            try:
                if compiled.where == "1":
                    total, rows, facets = self._search_all(per_page, offset)
                else:
                    total, rows, facets = self._search_hits(compiled, per_page, offset)
            finally:
                self._db.execute("DROP TABLE IF EXISTS temp.hits")
                self._db.execute("COMMIT")
        items = [self._row(ExecutionRecord.model_validate_json(str(r[0]))) for r in rows]
        return SearchPage(query=query, total=total, page=page, per_page=per_page, items=items, facets=facets)

    def _search_hits(
        self, compiled: CompiledQuery, limit: int, offset: int
    ) -> tuple[int, list[tuple[object, ...]], Facets]:
        """Evaluate the filter once into temp.hits, then count, page and facet over those rows."""
        db = self._db
        db.execute(_HITS.format(ctes=compiled.ctes, where=compiled.where), compiled.params)
        total = int(str(db.execute("SELECT COUNT(*) FROM temp.hits").fetchone()[0]))
        rows = db.execute(_HITS_PAGE, (limit, offset)).fetchall()
        facets = Facets(**{name: self._facet(sql) for name, sql in _HITS_FACETS.items()})
        return total, rows, facets

    def _search_all(self, limit: int, offset: int) -> tuple[int, list[tuple[object, ...]], Facets]:
        """No filter: counts and facets straight from the (covering) indexes."""
        total = int(str(self._db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]))
        rows = self._db.execute(_NEWEST_PAGE, (limit, offset)).fetchall()
        facets = Facets(**{name: self._facet(sql) for name, sql in _ALL_FACETS.items()})
        return total, rows, facets

    def _facet(self, sql: str) -> list[FacetCount]:
        return [FacetCount(value=str(v), count=int(str(n))) for v, n in self._db.execute(sql).fetchall()]

    @staticmethod
    def _row(record: ExecutionRecord) -> RunRow:
        return RunRow(
            id=record.id,
            started_at=record.started_at,
            finished_at=record.finished_at,
            status=record.status,
            intent=record.intent,
            triggered_by=record.triggered_by,
            caller=record.caller,
            duration_seconds=record.duration_seconds,
            namespaces=record.namespaces,
            tags=record.tags,
            failed_step=record.failed_step,
            error=record.error,
        )

    def iter_matches(self, query: str = "", *, limit: int | None = None) -> Iterator[ExecutionRecord]:
        """Every record matching `query`, newest first, in batches keyed on (started_at, seq), so an
        export of any size stays small in memory and never skips or repeats a run saved meanwhile."""
        compiled = compile_query(query)
        after: tuple[float, int] = (float("inf"), 2**62)
        seen = 0
        while limit is None or seen < limit:
            size = 500 if limit is None else min(500, limit - seen)
            sql = _EXPORT_BATCH.format(ctes=compiled.ctes, where=compiled.where)
            rows = self._read(sql, (*compiled.params, *after, size))
            for started, seq, raw in rows:
                yield ExecutionRecord.model_validate_json(str(raw))
                after = (float(str(started)), int(str(seq)))
            seen += len(rows)
            if len(rows) < size:
                return

    def export(self, query: str = "", fmt: Literal["json", "csv"] = "json", *, limit: int | None = None) -> str:
        """JSON: a list of full records. CSV: one flat row per record, cells safe to open in a spreadsheet."""
        records = self.iter_matches(query, limit=limit)
        if fmt == "json":
            return json.dumps([r.model_dump(mode="json") for r in records], indent=2) + "\n"
        if fmt == "csv":
            return _to_csv(records)
        raise RecordError(f"export format must be json or csv, not {fmt!r}")

    def metric_rows(
        self, start: datetime | None = None, end: datetime | None = None
    ) -> Iterator[tuple[str, RunStatus, float, str | None, bool]]:
        """(intent, status, duration, failed step, finished?) of runs started in [start, end), for metrics."""
        sql = "SELECT intent, status, duration_seconds, failed_step, finished_at IS NOT NULL FROM runs WHERE 1"
        params: list[object] = []
        if start is not None:
            sql += " AND started_at >= ?"
            params.append(start.timestamp())
        if end is not None:
            sql += " AND started_at < ?"
            params.append(end.timestamp())
        for intent, status, duration, step, finished in self._read(sql + " ORDER BY started_at", params):
            failed_step = None if step is None else str(step)
            yield str(intent), RunStatus(str(status)), float(str(duration)), failed_step, bool(finished)

    def summary(self, record_id: str) -> RunSummary:
        return summarize(self.get(record_id))

    # -- retention ---------------------------------------------------------------------------------

    def apply_retention(self, days: int | None = None, *, now: datetime | None = None) -> RetentionResult:
        """Archive, then delete, every run that started before midnight UTC `days` days ago.

        One day at a time, under the write lock: the day's archive file is written to a temporary
        file, fsynced and renamed into place before the same records are deleted in the same
        transaction. A crash in between leaves the records in the database; the next run re-archives
        them (deduplicated by id), so nothing is ever deleted without being on disk first.
        """
        days = self.retention_days if days is None else days
        if days < 0:
            raise RecordError(f"retention days must be 0 or more, not {days}")
        today = (now or datetime.now(UTC)).astimezone(UTC).date()
        cutoff = _day_start(today - timedelta(days=days))
        archive_dir = self.data_dir / ARCHIVE_DIR
        files: list[Path] = []
        archived = deleted = 0
        while True:
            oldest = self._read("SELECT MIN(started_at) FROM runs WHERE started_at < ?", (cutoff.timestamp(),))
            if oldest[0][0] is None:
                break
            day = datetime.fromtimestamp(float(str(oldest[0][0])), UTC).date()
            end = min(_day_start(day + timedelta(days=1)), cutoff)
            with self._transaction() as db:
                rows = db.execute(
                    "SELECT runs.seq, r.record FROM runs JOIN run_records AS r ON r.seq = runs.seq"
                    " WHERE runs.started_at < ? ORDER BY runs.started_at, runs.seq",
                    (end.timestamp(),),
                ).fetchall()
                archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                path = archive_dir / f"runs-{day.isoformat()}.jsonl.gz"
                _write_archive(path, [str(r[1]) for r in rows])
                for seq, _ in rows:
                    db.execute("DELETE FROM runs WHERE seq = ?", (seq,))
                    for statement in _DELETE_SIDE:
                        db.execute(statement, (seq,))
            files.append(path)
            archived += len(rows)
            deleted += len(rows)
        return RetentionResult(cutoff=cutoff, archived=archived, deleted=deleted, files=files)


def _write_archive(path: Path, lines: list[str]) -> None:
    """Merge into the day's archive atomically: temp file, fsync, rename, fsync the directory."""
    merged: dict[str, str] = {}
    if path.exists():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    merged[json.loads(line)["id"]] = line.rstrip("\n")
    for line in lines:
        merged[json.loads(line)["id"]] = line
    body = "".join(f"{line}\n" for line in merged.values()).encode("utf-8")
    atomic_write(path, gzip.compress(body, mtime=0))


_CSV_COLUMNS = (
    "id", "started_at", "finished_at", "status", "intent", "triggered_by", "caller", "purpose", "duration_seconds",
    "namespaces", "resources", "tags", "failed_step", "error", "session_id", "parent_id",
)


def _cell(value: object) -> str:
    """Text that a spreadsheet would run as a formula (=, +, -, @) gets a leading quote."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    elif isinstance(value, datetime):
        value = value.isoformat()
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _to_csv(records: Iterable[ExecutionRecord]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for record in records:
        writer.writerow([_cell(getattr(record, column)) for column in _CSV_COLUMNS])
    return out.getvalue()
