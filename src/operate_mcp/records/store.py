"""The run store: execution records in SQLite (WAL) with an FTS5 index, search, export and retention.

One small `runs` row per record holds the columns the search qualifiers filter on; the full
record, as JSON, sits in `run_records` under the same `seq`, so filters and facets never read it
and a page reads only its own records. Tags, namespaces and resources live in small side tables,
so `tag:ci` is an index lookup; so are the images and the pod / Warning event reasons of the record's
before/after snapshots (`image:`, `reason:`).
Free text (intent, command output, log excerpts, errors) is in the `runs_fts` FTS5 table, whose
rowid is the run's `seq`. Intents and namespace lists are stored once each, in `facet_values`, and a
run refers to them by id: a search reads a few small numbers per match, never strings.

The `daily` and `daily_steps` tables count runs per UTC day, category, namespace and status (with a
duration histogram), updated in the same transaction as every save and never pruned by retention, so
metrics over days whose records were archived still have an answer.
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import io
import json
import logging
import math
import re
import sqlite3
import string
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, Field

from operate_mcp.records.archive import archive_lines, day_start, retention_cutoff
from operate_mcp.records.archive import write_archive as _write_archive
from operate_mcp.records.category import step_group
from operate_mcp.records.models import FAILURE_STATUSES, ExecutionRecord, RecordError, RecordNotFound, RunStatus
from operate_mcp.records.query import CompiledQuery, compile_query, fold
from operate_mcp.records.sqlite import open_private, write_transaction
from operate_mcp.records.summary import RunSummary, summarize

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 5
DB_NAME = "records.db"
ARCHIVE_DIR = "archive"
MAX_PER_PAGE = 500

# Each entry upgrades the schema from version i to i + 1; never edit one that has shipped.
# The wide indexes cover what a search reads of every match (seq, started_at, status, intent_id,
# namespaces_id) for the common filters, so `intent:deploy* status:failed` never touches the table rows.
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
    # 3: the operation category and the failing step's verb and kind as columns; the snapshots' images and
    # reasons in side tables; daily aggregates that outlive retention. `_BACKFILL[3]` then fills them all
    # from the stored records (and the daily tables from the archive files too).
    """
    ALTER TABLE runs ADD COLUMN category TEXT NOT NULL DEFAULT 'other' COLLATE NOCASE;
    ALTER TABLE runs ADD COLUMN failed_group TEXT;
    CREATE INDEX runs_category ON runs (category, started_at, status, intent);
    CREATE TABLE run_images (run INTEGER NOT NULL, image TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (image, run))
        WITHOUT ROWID;
    CREATE INDEX run_images_run ON run_images (run);
    CREATE TABLE run_reasons (run INTEGER NOT NULL, reason TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY (reason, run))
        WITHOUT ROWID;
    CREATE INDEX run_reasons_run ON run_reasons (run);
    CREATE TABLE daily (
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        namespace TEXT NOT NULL COLLATE NOCASE,
        status TEXT NOT NULL,
        le REAL NOT NULL,
        runs INTEGER NOT NULL,
        duration_sum REAL NOT NULL,
        PRIMARY KEY (day, category, namespace, status, le)
    ) WITHOUT ROWID;
    CREATE TABLE daily_steps (
        day TEXT NOT NULL,
        category TEXT NOT NULL,
        namespace TEXT NOT NULL COLLATE NOCASE,
        status TEXT NOT NULL,
        step TEXT NOT NULL,
        failures INTEGER NOT NULL,
        PRIMARY KEY (day, category, namespace, status, step)
    ) WITHOUT ROWID;
    CREATE TABLE store_meta (key TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
    """,
    # 4: facets without counting or joining per match. Exact counts of every run by status and intent, and
    # of run_namespaces rows by namespace, kept by triggers (`_FACET_TRIGGERS`, created with the backfill) in
    # the same transaction as every write, for the empty search; `_BACKFILL[4]` fills them. And the run's
    # namespaces (joined by U+001F) as a column carried by the wide indexes, so a search reads everything
    # its facets need from the index it filters with, never from run_namespaces.
    """
    ALTER TABLE runs ADD COLUMN namespaces TEXT NOT NULL DEFAULT '';
    UPDATE runs SET namespaces = COALESCE(
        (SELECT group_concat(namespace, char(31)) FROM run_namespaces WHERE run = runs.seq), '');
    DROP INDEX runs_started;
    CREATE INDEX runs_started ON runs (started_at, status, intent, namespaces);
    DROP INDEX runs_status;
    CREATE INDEX runs_status ON runs (status, started_at, intent, namespaces);
    DROP INDEX runs_intent_key;
    CREATE INDEX runs_intent_key ON runs (intent_key, status, duration_seconds, started_at, intent, namespaces);
    DROP INDEX runs_category;
    CREATE INDEX runs_category ON runs (category, started_at, status, intent, namespaces);
    CREATE TABLE facet_counts (
        facet TEXT NOT NULL,
        value TEXT NOT NULL COLLATE NOCASE,
        n INTEGER NOT NULL,
        PRIMARY KEY (facet, value)
    ) WITHOUT ROWID;
    CREATE INDEX facet_counts_top ON facet_counts (facet, n DESC, value);
    """,
    # 5: a search reads small integers per match, from an index that fits in memory. Intents and namespace
    # lists are stored once each in `facet_values` and runs refer to them by id (strings cost far more to
    # hand to Python, match by match, than ids do); the wide indexes carry the ids instead of the strings,
    # and `runs_seq` carries what a search reads of a run it found by seq (free text, tags, namespaces),
    # a sixth of the size of the `runs` rows. The namespaces column of version 4 goes: its id replaces it.
    """
    CREATE TABLE facet_values (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
    INSERT OR IGNORE INTO facet_values (value) SELECT intent FROM runs;
    INSERT OR IGNORE INTO facet_values (value) SELECT namespaces FROM runs;
    DROP INDEX runs_started;
    DROP INDEX runs_status;
    DROP INDEX runs_intent_key;
    DROP INDEX runs_category;
    ALTER TABLE runs ADD COLUMN intent_id INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN namespaces_id INTEGER NOT NULL DEFAULT 0;
    UPDATE runs SET intent_id = (SELECT id FROM facet_values WHERE value = runs.intent),
        namespaces_id = (SELECT id FROM facet_values WHERE value = runs.namespaces);
    ALTER TABLE runs DROP COLUMN namespaces;
    CREATE INDEX runs_started ON runs (started_at, status, intent_id, namespaces_id);
    CREATE INDEX runs_status ON runs (status, started_at, intent_id, namespaces_id);
    CREATE INDEX runs_intent_key ON runs (intent_key, status, duration_seconds, started_at, intent_id, namespaces_id);
    CREATE INDEX runs_category ON runs (category, started_at, status, intent_id, namespaces_id);
    CREATE INDEX runs_seq ON runs (seq, started_at, status, intent_id, namespaces_id);
    """,
)

# Trigger bodies hold `;`, so they are not part of a `_MIGRATIONS` script (split on `;`): `_backfill_4`
# runs each as one statement. Counts reaching 0 are deleted, so a value no run has is never shown.
_FACET_UP = (
    "INSERT INTO facet_counts (facet, value, n) VALUES ({rows}) ON CONFLICT (facet, value) DO UPDATE SET n = n + 1"
)
_FACET_DOWN = (
    "UPDATE facet_counts SET n = n - 1 WHERE facet = '{facet}' AND value = OLD.{column};"
    " DELETE FROM facet_counts WHERE facet = '{facet}' AND value = OLD.{column} AND n <= 0;"
)
_FACET_TRIGGERS: tuple[str, ...] = (
    "CREATE TRIGGER runs_facets_insert AFTER INSERT ON runs BEGIN "
    + _FACET_UP.format(rows="'status', NEW.status, 1), ('intent', NEW.intent, 1") + "; END",
    "CREATE TRIGGER runs_facets_update AFTER UPDATE OF status, intent ON runs BEGIN "
    + _FACET_DOWN.format(facet="status", column="status") + " " + _FACET_DOWN.format(facet="intent", column="intent")
    + " " + _FACET_UP.format(rows="'status', NEW.status, 1), ('intent', NEW.intent, 1") + "; END",
    "CREATE TRIGGER runs_facets_delete AFTER DELETE ON runs BEGIN "
    + _FACET_DOWN.format(facet="status", column="status") + " " + _FACET_DOWN.format(facet="intent", column="intent")
    + " END",
    "CREATE TRIGGER run_namespaces_facets_insert AFTER INSERT ON run_namespaces BEGIN "
    + _FACET_UP.format(rows="'namespace', NEW.namespace, 1") + "; END",
    "CREATE TRIGGER run_namespaces_facets_delete AFTER DELETE ON run_namespaces BEGIN "
    + _FACET_DOWN.format(facet="namespace", column="namespace") + " END",
)

# The `daily` duration histogram: upper bounds in seconds (never edit once shipped: rows carry them).
# `le` is -1 for runs without a duration (still running, or never finished).
DURATION_BUCKETS: tuple[float, ...] = (
    1, 2, 3, 5, 7.5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 450, 600, 900, 1200, 1800, 2700, 3600,
    5400, 7200, 10800, 21600, 43200, 86400, math.inf,
)
NO_DURATION = -1.0
ALL_NAMESPACES = "*"  # the `daily` rows that count every run once, whatever namespaces it touched
_DAILY_ADD = (
    "INSERT INTO daily (day, category, namespace, status, le, runs, duration_sum) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day, category, namespace, status, le) DO UPDATE SET runs = runs + excluded.runs,"
    " duration_sum = duration_sum + excluded.duration_sum"
)
_DAILY_STEPS_ADD = (
    "INSERT INTO daily_steps (day, category, namespace, status, step, failures) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (day, category, namespace, status, step) DO UPDATE SET failures = failures + excluded.failures"
)
_OLD_ROW = (
    "SELECT seq, started_at, category, status, duration_seconds, finished_at IS NOT NULL, failed_group"
    " FROM runs WHERE id = ?"
)
_WARNING_REASON = re.compile(r"(?:^|[\s:])Warning ([A-Za-z][\w.-]*)")

_UPSERT = """
INSERT INTO runs (id, started_at, finished_at, status, intent, triggered_by, caller, purpose, parent_id,
                  session_id, duration_seconds, failed_step, intent_key, triggered_by_key, caller_key, failed_step_key,
                  category, failed_group, intent_id, namespaces_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    started_at = excluded.started_at, finished_at = excluded.finished_at, status = excluded.status,
    intent = excluded.intent, triggered_by = excluded.triggered_by, caller = excluded.caller,
    purpose = excluded.purpose, parent_id = excluded.parent_id, session_id = excluded.session_id,
    duration_seconds = excluded.duration_seconds, failed_step = excluded.failed_step,
    intent_key = excluded.intent_key, triggered_by_key = excluded.triggered_by_key,
    caller_key = excluded.caller_key, failed_step_key = excluded.failed_step_key,
    category = excluded.category, failed_group = excluded.failed_group, intent_id = excluded.intent_id,
    namespaces_id = excluded.namespaces_id
RETURNING seq
"""
_DELETE_SIDE = (
    "DELETE FROM run_records WHERE seq = ?",
    "DELETE FROM run_tags WHERE run = ?",
    "DELETE FROM run_namespaces WHERE run = ?",
    "DELETE FROM run_resources WHERE run = ?",
    "DELETE FROM run_images WHERE run = ?",
    "DELETE FROM run_reasons WHERE run = ?",
    "DELETE FROM runs_fts WHERE rowid = ?",
)
# Facets show the 10 most frequent values. `{where}` and `{ctes}` below are always query.py's output:
# constant SQL fragments; user values are bound parameters. A search reads, for every match, only what the
# wide indexes carry (seq, started_at, status and two ids); counting, facets and the page's order are then
# worked out in Python, which hashes where SQL would sort, and the few distinct ids become strings at the end.
# `{index}` is empty, or ` INDEXED BY runs_seq` when SQLite would look the matches up by seq in the table
# itself (free text, tags, namespaces) and runs_seq holds every column the filter reads: the planner prefers
# the table's own key, whose rows are six times wider, so at a million runs each lookup would miss the cache.
_MATCHES = "{ctes}SELECT started_at, seq, status, intent_id, namespaces_id FROM runs{index} WHERE {where}"
_SEQ_INDEX = " INDEXED BY runs_seq"
_BY_SEQ = "SEARCH runs USING INTEGER PRIMARY KEY"  # the outer loop of a plan that looks runs up by seq
_BY_SEQ_COVERED = "SEARCH runs USING COVERING INDEX runs_seq "
_MATCH_BATCH = 20_000
_VALUES = "SELECT id, value FROM facet_values WHERE id IN (SELECT value FROM json_each(?))"
_PAGE_RECORDS = "SELECT seq, record FROM run_records WHERE seq IN (SELECT value FROM json_each(?))"
NAMESPACE_SEPARATOR = "\x1f"
FACET_SIZE = 10
# The empty query: the counts the facet triggers keep, top 10 straight off the facet_counts_top index.
_ALL_FACETS = {
    "status": "SELECT value, n FROM facet_counts WHERE facet = 'status' ORDER BY n DESC, value",
    "intent": "SELECT value, n FROM facet_counts WHERE facet = 'intent' ORDER BY n DESC, value LIMIT 10",
    "namespace": "SELECT value, n FROM facet_counts WHERE facet = 'namespace' ORDER BY n DESC, value LIMIT 10",
}
_ALL_TOTAL = "SELECT COALESCE(SUM(n), 0) FROM facet_counts WHERE facet = 'status'"  # every run has one status
_EXPORT_BATCH = (
    "{ctes}SELECT runs.started_at, runs.seq, r.record FROM runs JOIN run_records AS r ON r.seq = runs.seq"
    " WHERE ({where}) AND (runs.started_at, runs.seq) < (?, ?)"
    " ORDER BY runs.started_at DESC, runs.seq DESC LIMIT ?"
)
_METRIC_ROWS = (
    "{ctes}SELECT intent, status, duration_seconds, failed_step, failed_group, finished_at IS NOT NULL, category"
    " FROM runs WHERE ({where}) AND started_at >= ? AND started_at < ? ORDER BY started_at"
)
# ?1 namespace (`*` for every run once), ?2..?3 the days, ?4 category and ?5 status (NULL: any)
_DAILY_FIGURES = (
    "SELECT category, status, le, SUM(runs), SUM(duration_sum) FROM daily"
    " WHERE namespace = ?1 AND day BETWEEN ?2 AND ?3 AND (?4 IS NULL OR category = ?4) AND (?5 IS NULL OR status = ?5)"
    " GROUP BY category, status, le ORDER BY category, status, le"
)
_DAILY_STEPS = (
    "SELECT step, SUM(failures) FROM daily_steps"
    " WHERE namespace = ?1 AND day BETWEEN ?2 AND ?3 AND (?4 IS NULL OR category = ?4) AND (?5 IS NULL OR status = ?5)"
    " GROUP BY step"
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


class MetricRow(NamedTuple):
    """What metrics read of one run, from the `runs` row alone."""

    intent: str
    status: RunStatus
    duration_seconds: float
    failed_step: str | None
    step_group: str | None  # the failing step by verb and kind (records/category.py step_group)
    finished: bool
    category: str


class DailyFigure(NamedTuple):
    """Runs of one category and status in one duration bucket, summed over the days asked for."""

    category: str
    status: RunStatus
    le: float  # the bucket's upper bound in seconds; NO_DURATION for runs without a duration
    runs: int
    duration_sum: float


class RetentionResult(BaseModel):
    cutoff: datetime
    archived: int
    deleted: int
    files: list[Path]


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def _nocase(text: str) -> str:
    """SQLite's NOCASE: ASCII letters fold, nothing else does."""
    return text.lower() if text.isascii() else text.translate(_ASCII_LOWER)


def _top_nocase(counts: Counter[str]) -> list[FacetCount]:
    """The 10 biggest groups of values equal under NOCASE (as `GROUP BY x COLLATE NOCASE` counts them),
    each shown in its most frequent spelling; ties in NOCASE order."""
    groups: dict[str, tuple[int, int, str]] = {}
    for value, n in counts.items():
        key = _nocase(value)
        total, best, shown = groups.get(key, (0, 0, value))
        groups[key] = (total + n, max(best, n), value if n > best else shown)
    top = heapq.nsmallest(FACET_SIZE, groups.items(), key=lambda g: (-g[1][0], g[0]))
    return [FacetCount(value=shown, count=total) for _, (total, _, shown) in top]


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


class _Facts(NamedTuple):
    """What a record contributes beyond its own columns, derived the same way on save and in migration."""

    failed_group: str | None
    images: list[str]
    reasons: list[str]


def _facts(record: ExecutionRecord) -> _Facts:
    failed_argv = next((c.argv for c in record.commands if not c.ok), None)
    images: list[str] = []
    reasons: list[str] = []
    for snapshot in (record.before, record.after):
        if snapshot is None:
            continue
        held = [*(i for p in snapshot.pods for i in p.images), *(i for w in snapshot.workloads for i in w.images)]
        images += [x for image in held for x in (image.image, image.image_id)]
        reasons += [x for pod in snapshot.pods for x in (pod.waiting_reason, pod.last_termination_reason)]
        reasons += [m.group(1) for m in map(_WARNING_REASON.search, snapshot.events) if m]
    return _Facts(
        failed_group=step_group(failed_argv, record.failed_step),
        images=list(dict.fromkeys(i for i in images if i)),
        reasons=list(dict.fromkeys(r for r in reasons if r)),
    )


class _Contribution(NamedTuple):
    """One run's share of the daily aggregates; subtracted again when the run is saved anew."""

    day: str
    category: str
    namespaces: tuple[str, ...]
    status: str
    finished: bool
    duration: float
    step: str | None


def _bucket(duration: float) -> float:
    return next(le for le in DURATION_BUCKETS if duration <= le)


def _day_of(started_at: float) -> str:
    return datetime.fromtimestamp(started_at, UTC).date().isoformat()


def _add_daily(db: sqlite3.Connection, c: _Contribution, sign: int) -> None:
    """Add (sign 1) or take back (sign -1) one run's counts: once under `*`, once per namespace it touched."""
    timed = c.finished and c.status != RunStatus.RUNNING.value
    le = _bucket(c.duration) if timed else NO_DURATION
    spent = sign * c.duration if timed else 0.0
    keys = [ALL_NAMESPACES, *dict.fromkeys(n.lower() for n in c.namespaces)]
    db.executemany(_DAILY_ADD, [(c.day, c.category, ns, c.status, le, sign, spent) for ns in keys])
    if c.step and c.status in FAILURE_STATUSES:
        db.executemany(_DAILY_STEPS_ADD, [(c.day, c.category, ns, c.status, c.step, sign) for ns in keys])
    if sign < 0:
        db.execute("DELETE FROM daily WHERE day = ? AND runs <= 0", (c.day,))
        db.execute("DELETE FROM daily_steps WHERE day = ? AND failures <= 0", (c.day,))


def _contribution(record: ExecutionRecord, facts: _Facts) -> _Contribution:
    return _Contribution(
        day=_day_of(record.started_at.timestamp()),
        category=record.category,
        namespaces=tuple(record.namespaces),
        status=record.status.value,
        finished=record.finished_at is not None,
        duration=record.duration_seconds,
        step=facts.failed_group,
    )


def _stored_contribution(db: sqlite3.Connection, row: Sequence[object]) -> _Contribution:
    """The contribution of a run as saved before, read back from its `runs` row and namespaces."""
    seq, started, category, status, duration, finished, group = row
    namespaces = tuple(str(n) for (n,) in db.execute("SELECT namespace FROM run_namespaces WHERE run = ?", (seq,)))
    return _Contribution(
        day=_day_of(float(str(started))),
        category=str(category),
        namespaces=namespaces,
        status=str(status),
        finished=bool(finished),
        duration=float(str(duration)),
        step=None if group is None else str(group),
    )


def _value_id(db: sqlite3.Connection, value: str) -> int:
    """The id of an intent or a namespace list in `facet_values`, added the first time it is seen."""
    db.execute("INSERT OR IGNORE INTO facet_values (value) VALUES (?)", (value,))
    return int(db.execute("SELECT id FROM facet_values WHERE value = ?", (value,)).fetchone()[0])


# Values no run refers to any more (deleted by retention, or saved again with another intent): two scans of
# `runs_seq`, which holds both ids (0.4 s at a million runs), once per retention that deleted something.
_UNUSED_VALUES = (
    "DELETE FROM facet_values"
    " WHERE id NOT IN (SELECT intent_id FROM runs) AND id NOT IN (SELECT namespaces_id FROM runs)"
)


def _write_side(db: sqlite3.Connection, seq: int, facts: _Facts) -> None:
    if facts.images:
        db.executemany("INSERT OR IGNORE INTO run_images (run, image) VALUES (?, ?)", [(seq, i) for i in facts.images])
    if facts.reasons:
        db.executemany(
            "INSERT OR IGNORE INTO run_reasons (run, reason) VALUES (?, ?)", [(seq, r) for r in facts.reasons]
        )


def _archive_day(path: Path) -> date | None:
    m = re.fullmatch(r"runs-(\d{4}-\d{2}-\d{2})\.jsonl\.gz", path.name)
    try:
        return date.fromisoformat(m.group(1)) if m else None
    except ValueError:
        return None


def _backfill_3(db: sqlite3.Connection, data_dir: Path) -> None:
    """Fill category, failing step group, images, reasons and the daily aggregates from the stored records,
    then add the archived runs (pruned before this version) to the daily aggregates."""
    last = 0
    while True:
        rows = db.execute(
            "SELECT seq, record FROM run_records WHERE seq > ? ORDER BY seq LIMIT 1000", (last,)
        ).fetchall()
        for seq, raw in rows:
            record = ExecutionRecord.model_validate_json(str(raw))
            facts = _facts(record)
            db.execute("UPDATE runs SET category = ?, failed_group = ? WHERE seq = ?",
                       (record.category, facts.failed_group, seq))
            _write_side(db, seq, facts)
            _add_daily(db, _contribution(record, facts), 1)
        if len(rows) < 1000:
            break
        last = int(rows[-1][0])
    newest: date | None = None
    for path in sorted((data_dir / ARCHIVE_DIR).glob("runs-*.jsonl.gz")):
        day = _archive_day(path)
        if day is None:
            continue
        try:
            archived = read_archive(path)
        except (OSError, ValueError, RecordError) as exc:
            logger.warning("daily aggregates: skipped the unreadable archive %s (%s)", path, exc)
            continue
        newest = max(newest or day, day)
        for record in archived:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (record.id,)).fetchone() is None:
                _add_daily(db, _contribution(record, _facts(record)), 1)
    if newest is not None:  # every run before the day after the newest archive had been pruned
        _set_pruned_before(db, day_start(newest + timedelta(days=1)))


def _set_pruned_before(db: sqlite3.Connection, cutoff: datetime) -> None:
    db.execute(
        "INSERT INTO store_meta (key, value) VALUES ('pruned_before', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = MAX(value, excluded.value)",
        (cutoff.timestamp(),),
    )


def _backfill_4(db: sqlite3.Connection, data_dir: Path) -> None:
    """Count the stored runs into facet_counts, then let the triggers keep the counts from here on."""
    db.execute("INSERT INTO facet_counts (facet, value, n) SELECT 'status', status, COUNT(*) FROM runs GROUP BY status")
    db.execute("INSERT INTO facet_counts (facet, value, n) SELECT 'intent', intent, COUNT(*) FROM runs GROUP BY intent")
    db.execute(
        "INSERT INTO facet_counts (facet, value, n)"
        " SELECT 'namespace', namespace, COUNT(*) FROM run_namespaces GROUP BY namespace"
    )
    for trigger in _FACET_TRIGGERS:
        db.execute(trigger)


def _backfill_5(db: sqlite3.Connection, data_dir: Path) -> None:
    """Planner statistics for the rebuilt indexes, if the store had them for the old ones (`PRAGMA optimize`
    on close makes them): without, the first searches after the upgrade pick worse plans (1.5 s at 1M runs)."""
    analyzed = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone()
    if analyzed and db.execute("SELECT 1 FROM sqlite_stat1 WHERE tbl = 'runs' LIMIT 1").fetchone():
        db.execute("ANALYZE runs")


# Python steps that run after a migration's SQL, by the version it brings the schema to.
_BACKFILL: dict[int, Callable[[sqlite3.Connection, Path], None]] = {3: _backfill_3, 4: _backfill_4, 5: _backfill_5}


def read_archive(path: Path) -> list[ExecutionRecord]:
    """The records in one archive file (gzip-compressed JSONL, one record per line)."""
    return [ExecutionRecord.model_validate_json(line) for line in archive_lines(path).values()]


def _runs_archive(data_dir: Path, day: date) -> Path:
    """The archive file of the runs that started on `day` (UTC)."""
    return data_dir / ARCHIVE_DIR / f"runs-{day.isoformat()}.jsonl.gz"


def _pruned_before(db: sqlite3.Connection) -> datetime | None:
    row = db.execute("SELECT value FROM store_meta WHERE key = 'pruned_before'").fetchone()
    return None if row is None else datetime.fromtimestamp(float(str(row[0])), UTC)


class _Archived:
    """The versions retention archived, for one save transaction: a run saved again (an import of the archive,
    a late update) takes its archived share of the daily aggregates back. Only runs that started before the
    last retention cutoff can be there; each day's file is read once."""

    def __init__(self, data_dir: Path, pruned_before: datetime | None) -> None:
        self.data_dir = data_dir
        self.pruned_before = pruned_before
        self._days: dict[date, dict[str, str]] = {}

    def version_of(self, record: ExecutionRecord) -> ExecutionRecord | None:
        if self.pruned_before is None or record.started_at.timestamp() >= self.pruned_before.timestamp():
            return None
        day = record.started_at.astimezone(UTC).date()
        if day not in self._days:
            self._days[day] = archive_lines(_runs_archive(self.data_dir, day))
        line = self._days[day].get(record.id)
        return None if line is None else ExecutionRecord.model_validate_json(line)


class RecordStore:
    """SQLite-backed record store; safe to share between threads of one process and between processes."""

    def __init__(self, data_dir: Path, *, retention_days: int = 30, synchronous: str = "FULL") -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self.retention_days = retention_days
        self._lock = threading.RLock()
        self._db = open_private(self.path, synchronous=synchronous)
        # 64 MB of page cache: searches over large stores look their matches up all over `runs_seq` (36 MB at a
        # million runs); with 32 MB each lookup missed the cache and a free-text search took a third longer.
        self._db.execute("PRAGMA cache_size = -64000")
        self._db.execute("PRAGMA temp_store = MEMORY")  # sorts and IN lists never touch the disk
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

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

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
                if target + 1 in _BACKFILL:
                    _BACKFILL[target + 1](db, self.data_dir)
                db.execute(f"PRAGMA user_version = {target + 1:d}")

    # -- writing -----------------------------------------------------------------------------------

    def save(self, record: ExecutionRecord) -> None:
        """Insert, or replace the record with the same id; one transaction, so readers never see half."""
        self.save_many([record])

    def save_many(self, records: Iterable[ExecutionRecord]) -> int:
        """Save several records in one transaction (imports, benchmarks); returns how many."""
        count = 0
        with self._transaction() as db:
            archived = _Archived(self.data_dir, _pruned_before(db))
            for record in records:
                self._write(db, record, archived)
                count += 1
        return count

    @staticmethod
    def _write(db: sqlite3.Connection, record: ExecutionRecord, archived: _Archived) -> None:
        facts = _facts(record)
        old = db.execute(_OLD_ROW, (record.id,)).fetchone()
        if old is not None:  # saved before (running, then finished): take back its share of the aggregates
            _add_daily(db, _stored_contribution(db, old), -1)
        elif (pruned := archived.version_of(record)) is not None:
            # pruned earlier: the aggregates kept its share when retention deleted it; take that share back
            _add_daily(db, _contribution(pruned, _facts(pruned)), -1)
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
                record.category,
                facts.failed_group,
                _value_id(db, record.intent),
                _value_id(db, NAMESPACE_SEPARATOR.join(record.namespaces)),
            ),
        ).fetchone()[0]
        if old is not None:  # a new run has no side rows: retention deletes them with the run, so a reused seq is clean
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
        _write_side(db, seq, facts)
        db.execute(
            "INSERT INTO runs_fts (rowid, intent, output, logs, error) VALUES (?, ?, ?, ?, ?)",
            (seq, *_fts_columns(record)),
        )
        _add_daily(db, _contribution(record, facts), 1)

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
                    total, rows, facets = self._search_matches(compiled, per_page, offset)
            finally:
                self._db.execute("COMMIT")
        items = [self._row(ExecutionRecord.model_validate_json(str(r[0]))) for r in rows]
        return SearchPage(query=query, total=total, page=page, per_page=per_page, items=items, facets=facets)

    def _search_matches(
        self, compiled: CompiledQuery, limit: int, offset: int
    ) -> tuple[int, list[tuple[object, ...]], Facets]:
        """Evaluate the filter once, in batches: count, facet and keep the newest `offset + limit` as they come."""
        sql = _MATCHES.format(ctes=compiled.ctes, index="", where=compiled.where)
        if self._outer_loop(sql, compiled.params).startswith(_BY_SEQ):
            narrow = _MATCHES.format(ctes=compiled.ctes, index=_SEQ_INDEX, where=compiled.where)
            if self._outer_loop(narrow, compiled.params).startswith(_BY_SEQ_COVERED):
                sql = narrow
        cursor = self._db.execute(sql, compiled.params)
        total = 0
        statuses: Counter[str] = Counter()
        intent_ids: Counter[int] = Counter()
        space_ids: Counter[int] = Counter()
        newest: list[tuple[object, ...]] = []
        keep = offset + limit
        while rows := cursor.fetchmany(_MATCH_BATCH):
            total += len(rows)
            statuses.update(map(itemgetter(2), rows))
            intent_ids.update(map(itemgetter(3), rows))
            space_ids.update(map(itemgetter(4), rows))
            newest = heapq.nlargest(keep, [*newest, *rows])  # by started_at, then seq (unique): the pages' order
        seqs = [int(str(row[1])) for row in newest[offset:]]
        records = dict(self._db.execute(_PAGE_RECORDS, (json.dumps(seqs),)).fetchall()) if seqs else {}
        rows_out: list[tuple[object, ...]] = [(records[seq],) for seq in seqs]
        ids = [*intent_ids, *space_ids]
        values = {int(str(i)): str(v) for i, v in self._db.execute(_VALUES, (json.dumps(ids),))} if ids else {}
        intents = Counter({values[i]: n for i, n in intent_ids.items()})  # one id per exact spelling
        namespaces: Counter[str] = Counter()
        for i, n in space_ids.items():
            joined = values[i]
            for name in joined.split(NAMESPACE_SEPARATOR) if joined else ():
                namespaces[name] += n
        facets = Facets(
            status=[FacetCount(value=v, count=n) for v, n in sorted(statuses.items(), key=lambda x: (-x[1], x[0]))],
            intent=_top_nocase(intents),
            namespace=_top_nocase(namespaces),
        )
        return total, rows_out, facets

    def _outer_loop(self, sql: str, params: Sequence[object]) -> str:
        """How SQLite's plan for `sql` reads `runs` in its outermost loop ("" if it does not)."""
        plan = self._db.execute(f"EXPLAIN QUERY PLAN {sql}", tuple(params)).fetchall()
        return next((str(d) for _, parent, _, d in plan if parent == 0 and str(d).startswith(("SEARCH runs ",
                                                                                           "SCAN runs"))), "")

    def _search_all(self, limit: int, offset: int) -> tuple[int, list[tuple[object, ...]], Facets]:
        """No filter: the total and the facets from the counts the triggers keep (facet_counts)."""
        total = int(str(self._db.execute(_ALL_TOTAL).fetchone()[0]))
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
        self, start: datetime | None = None, end: datetime | None = None, *, query: str = ""
    ) -> Iterator[MetricRow]:
        """The runs matching `query` (the search language) that started in [start, end), for metrics."""
        compiled = compile_query(query)
        window = (-math.inf if start is None else start.timestamp(), math.inf if end is None else end.timestamp())
        sql = _METRIC_ROWS.format(ctes=compiled.ctes, where=compiled.where)
        for intent, status, duration, step, group, finished, category in self._read(sql, (*compiled.params, *window)):
            yield MetricRow(
                intent=str(intent),
                status=RunStatus(str(status)),
                duration_seconds=float(str(duration)),
                failed_step=None if step is None else str(step),
                step_group=None if group is None else str(group),
                finished=bool(finished),
                category=str(category),
            )

    def pruned_before(self) -> datetime | None:
        """The latest retention cutoff that deleted runs: records before it are only in the archive."""
        with self._lock:
            return _pruned_before(self._db)

    @staticmethod
    def _daily_params(
        first: date | None, last: date | None, category: str | None, namespace: str | None, status: str | None
    ) -> tuple[object, ...]:
        """The values for `_DAILY_FIGURES` and `_DAILY_STEPS`: a filter left out (None) matches everything."""
        days = (first.isoformat() if first else "0000-01-01", last.isoformat() if last else "9999-12-31")
        return (namespace or ALL_NAMESPACES, *days, category, status)

    def daily_figures(
        self, first: date | None = None, last: date | None = None, *, category: str | None = None,
        namespace: str | None = None, status: str | None = None,
    ) -> list[DailyFigure]:
        """The daily aggregates of the UTC days first..last (both included), per category, status and bucket.

        Without `namespace` every run counts once; with it, the runs that touched that namespace.
        """
        rows = self._read(_DAILY_FIGURES, self._daily_params(first, last, category, namespace, status))
        return [
            DailyFigure(str(c), RunStatus(str(s)), float(str(le)), int(str(n)), float(str(total)))
            for c, s, le, n, total in rows
        ]

    def daily_steps(
        self, first: date | None = None, last: date | None = None, *, category: str | None = None,
        namespace: str | None = None, status: str | None = None,
    ) -> list[tuple[str, int]]:
        """Failing steps (verb and kind) of failed, partial and interrupted runs in the daily aggregates."""
        rows = self._read(_DAILY_STEPS, self._daily_params(first, last, category, namespace, status))
        return [(str(step), int(str(n))) for step, n in rows]

    def summary(self, record_id: str) -> RunSummary:
        return summarize(self.get(record_id))

    # -- retention ---------------------------------------------------------------------------------

    def apply_retention(self, days: int | None = None, *, now: datetime | None = None) -> RetentionResult:
        """Archive, then delete, every run that started before midnight UTC `days` days ago.

        The daily aggregates stay: metrics over those days still have an answer (`pruned_before`).

        One day at a time, under the write lock: the day's archive file is written to a temporary
        file, fsynced and renamed into place before the same records are deleted in the same
        transaction. A crash in between leaves the records in the database; the next run re-archives
        them (deduplicated by id), so nothing is ever deleted without being on disk first.
        """
        days = self.retention_days if days is None else days
        if days < 0:
            raise RecordError(f"retention days must be 0 or more, not {days}")
        cutoff = retention_cutoff(days, now)
        files: list[Path] = []
        archived = deleted = 0
        while True:
            oldest = self._read("SELECT MIN(started_at) FROM runs WHERE started_at < ?", (cutoff.timestamp(),))
            if oldest[0][0] is None:
                break
            day = datetime.fromtimestamp(float(str(oldest[0][0])), UTC).date()
            end = min(day_start(day + timedelta(days=1)), cutoff)
            with self._transaction() as db:
                rows = db.execute(
                    "SELECT runs.seq, r.record FROM runs JOIN run_records AS r ON r.seq = runs.seq"
                    " WHERE runs.started_at < ? ORDER BY runs.started_at, runs.seq",
                    (end.timestamp(),),
                ).fetchall()
                path = _runs_archive(self.data_dir, day)
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _write_archive(path, [str(r[1]) for r in rows])
                for seq, _ in rows:
                    db.execute("DELETE FROM runs WHERE seq = ?", (seq,))
                    for statement in _DELETE_SIDE:
                        db.execute(statement, (seq,))
                _set_pruned_before(db, end)  # in the same transaction: metrics know these days are archived
            files.append(path)
            archived += len(rows)
            deleted += len(rows)
        if deleted:
            with self._transaction() as db:
                db.execute(_UNUSED_VALUES)
        return RetentionResult(cutoff=cutoff, archived=archived, deleted=deleted, files=files)


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
