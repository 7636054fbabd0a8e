"""The anomaly store: every anomaly found in a run, and the learned duration baselines, in `records.db`.

Anomalies sit in their own tables of the records database (one row per anomaly, its JSON beside the
columns the queries filter on) and, for people and `grep`, as one YAML file per anomaly under
`<data_dir>/anomalies/YYYY-MM-DD/<id>.yaml` (the UTC day it was first detected). P1 and P2 anomalies
also go to the failure alert log and webhook (`records/alerts.py`). Retention follows the run store's:
anomalies past it go to `<data_dir>/archive/anomalies-YYYY-MM-DD.jsonl.gz`, then leave the table and
their YAML files; the baselines are running statistics and stay.

This module owns its tables and their schema version (the `anomaly_schema` table); the run store
owns `PRAGMA user_version`, so neither store's migrations ever touch the other's tables. Each store
opens its own connection to the same WAL database file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from operate_mcp.fileio import atomic_write
from operate_mcp.model.observation import Anomaly, AnomalySeverity, Category
from operate_mcp.records.alerts import FailureAlert, FailureAlerts
from operate_mcp.records.archive import archived_ids, day_start, retention_cutoff, write_archive
from operate_mcp.records.models import RECORD_ID, RecordError
from operate_mcp.records.sqlite import open_private, write_transaction
from operate_mcp.records.store import ARCHIVE_DIR, DB_NAME, RetentionResult
from operate_mcp.redact import redact

logger = logging.getLogger(__name__)

ANOMALIES_DIR = "anomalies"
ANOMALY_ID = re.compile(r"^anom-\d{13}-[0-9a-f]{8}$")
SEVERITY_RANK: dict[str, int] = {"P1": 1, "P2": 2, "P3": 3}
ALERTED_SEVERITIES = frozenset({"P1", "P2"})
SCHEMA_VERSION = 1
MAX_QUERY_LIMIT = 1_000
MAX_BASELINE_KEYS = 2_000  # (category, step) pairs kept; the least recently updated go first

# Each entry upgrades this module's tables from version i to i + 1; never edit one that has shipped.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE anomalies (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        severity INTEGER NOT NULL,
        detected_at REAL NOT NULL,
        category TEXT NOT NULL,
        namespace TEXT NOT NULL COLLATE NOCASE,
        target TEXT NOT NULL COLLATE NOCASE,
        body TEXT NOT NULL
    );
    CREATE INDEX anomalies_detected ON anomalies (detected_at, severity);
    CREATE INDEX anomalies_run ON anomalies (run_id);
    CREATE INDEX anomalies_namespace ON anomalies (namespace, detected_at);
    CREATE INDEX anomalies_category ON anomalies (category, detected_at);
    CREATE TABLE anomaly_baselines (
        category TEXT NOT NULL,
        step TEXT NOT NULL,
        body TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (category, step)
    ) WITHOUT ROWID;
    CREATE INDEX anomaly_baselines_updated ON anomaly_baselines (updated_at);
    """,
)


class AnomalyNotFound(RecordError):
    """No anomaly with that id; the message says how to find one."""


class BaselineRow(BaseModel):
    """What is remembered of one (category, step)'s durations: an EWMA, and a bounded window of recent samples.

    `step` is "" for the whole run. `recent_runs` holds the runs behind `recent`, so a run learned twice
    (detection again, on demand) is counted once.
    """

    category: str
    step: str = ""
    count: int = 0  # every sample ever learned, not just the window
    ewma: float = 0.0
    recent: list[float] = Field(default_factory=list)
    recent_runs: list[str] = Field(default_factory=list)
    updated_at: datetime


class AnomalyRetentionResult(RetentionResult):
    """The run store's retention result, plus the anomalies' YAML files removed (leftovers of a crash too)."""

    yaml_removed: int = 0


def anomaly_id(run_id: str, rule: str, target: str) -> str:
    """`anom-<the run's epoch ms>-<8 hex of run, rule and target>`: sorts with its run, and the same finding
    on the same run keeps its id, so detecting a run again updates its anomalies instead of repeating them."""
    digest = hashlib.sha256(f"{run_id}\x00{rule}\x00{target}".encode()).hexdigest()[:8]
    ms = run_id.split("-")[1] if RECORD_ID.match(run_id) else f"{int(datetime.now(UTC).timestamp() * 1000):013d}"
    return f"anom-{ms}-{digest}"


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


class AnomalyStore:
    """Anomalies and baselines in `<data_dir>/records.db`; safe to share between threads and processes."""

    def __init__(self, data_dir: Path, *, alerts: FailureAlerts | None = None) -> None:
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self.files_dir = data_dir / ANOMALIES_DIR
        self.alerts = alerts
        self._lock = threading.RLock()
        self._db = open_private(self.path)
        self._migrate()

    # -- lifecycle ---------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AnomalyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def _migrate(self) -> None:
        with self._transaction() as db:
            db.execute("CREATE TABLE IF NOT EXISTS anomaly_schema (version INTEGER NOT NULL)")
            row = db.execute("SELECT version FROM anomaly_schema").fetchone()
            version = 0 if row is None else int(row[0])
            if version > SCHEMA_VERSION:
                raise RecordError(
                    f"{self.path} has anomaly tables of schema version {version}, newer than this operate-mcp "
                    f"understands ({SCHEMA_VERSION}); upgrade operate-mcp"
                )
            for target in range(version, SCHEMA_VERSION):
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
            if version != SCHEMA_VERSION:
                db.execute("DELETE FROM anomaly_schema")
                db.execute("INSERT INTO anomaly_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    # -- anomalies ---------------------------------------------------------------------------------

    def file_of(self, anomaly: Anomaly) -> Path:
        return self.files_dir / _day(anomaly.detected_at) / f"{anomaly.id}.yaml"

    def save(self, anomaly: Anomaly, *, intent: str | None = None) -> bool:
        """Store (or update) one anomaly: its row and its YAML file; True when it is new.

        A new P1 or P2 anomaly is also alerted (failure log line and webhook); an update of one already
        stored keeps its first `detected_at` (and so its file) and is not alerted again.
        """
        with self._transaction() as db:
            row = db.execute("SELECT detected_at FROM anomalies WHERE id = ?", (anomaly.id,)).fetchone()
            if row is not None:
                anomaly = anomaly.model_copy(update={"detected_at": datetime.fromtimestamp(float(row[0]), UTC)})
            db.execute(
                "INSERT INTO anomalies (id, run_id, rule, severity, detected_at, category, namespace, target, body)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET run_id = excluded.run_id,"
                " rule = excluded.rule, severity = excluded.severity, category = excluded.category,"
                " namespace = excluded.namespace, target = excluded.target, body = excluded.body",
                (
                    anomaly.id, anomaly.run_id, anomaly.rule, SEVERITY_RANK[anomaly.severity],
                    anomaly.detected_at.timestamp(), anomaly.category, anomaly.namespace, anomaly.target,
                    anomaly.model_dump_json(),
                ),
            )
            # inside the transaction: a file that cannot be written leaves no row behind either
            atomic_write(self.file_of(anomaly), _yaml(anomaly))
        new = row is None
        if new and self.alerts is not None and anomaly.severity in ALERTED_SEVERITIES:
            alert, details = _alert_of(anomaly, intent)
            self.alerts.alert(alert, event="anomaly", details=details)
        return new

    def save_many(self, anomalies: Iterable[Anomaly], *, intent: str | None = None) -> int:
        """Save each anomaly of a run; returns how many were new."""
        return sum(self.save(a, intent=intent) for a in anomalies)

    def get(self, anomaly_id: str) -> Anomaly:
        with self._lock:
            row = self._db.execute("SELECT body FROM anomalies WHERE id = ?", (anomaly_id,)).fetchone()
        if row is None:
            raise AnomalyNotFound(
                f"no anomaly {anomaly_id!r} in {self.path}; list them with `operate-mcp anomalies` "
                f"or read the files under {self.files_dir}"
            )
        return Anomaly.model_validate_json(str(row[0]))

    def query(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        category: Category | None = None,
        min_severity: AnomalySeverity | None = None,
        namespace: str | None = None,
        run_id: str | None = None,
        rule: str | None = None,
        limit: int = 100,
    ) -> list[Anomaly]:
        """Newest first. `min_severity="P2"` means P2 and worse (P1 and P2), the way alert thresholds read;
        `since` is inclusive, `until` exclusive; the other filters are exact (namespace ignores case)."""
        if not 1 <= limit <= MAX_QUERY_LIMIT:
            raise RecordError(f"limit must be between 1 and {MAX_QUERY_LIMIT}, not {limit}")
        if min_severity is not None and min_severity not in SEVERITY_RANK:
            raise RecordError(f"severity must be P1, P2 or P3, not {min_severity!r}")
        clauses: list[str] = []
        params: list[object] = []
        for sql, value in (
            ("detected_at >= ?", None if since is None else since.timestamp()),
            ("detected_at < ?", None if until is None else until.timestamp()),
            ("category = ?", category),
            ("severity <= ?", None if min_severity is None else SEVERITY_RANK[min_severity]),
            ("namespace = ?", namespace),
            ("run_id = ?", run_id),
            ("rule = ?", rule),
        ):
            if value is not None:
                clauses.append(sql)
                params.append(value)
        where = " AND ".join(clauses) or "1"
        sql = f"SELECT body FROM anomalies WHERE {where} ORDER BY detected_at DESC, id DESC LIMIT ?"  # noqa: S608 - constant fragments
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [Anomaly.model_validate_json(str(r[0])) for r in rows]

    def for_run(self, run_id: str) -> list[Anomaly]:
        return self.query(run_id=run_id, limit=MAX_QUERY_LIMIT)

    # -- retention ---------------------------------------------------------------------------------

    def apply_retention(self, days: int, *, now: datetime | None = None) -> AnomalyRetentionResult:
        """Archive, then delete, every anomaly detected before midnight UTC `days` days ago, and its YAML file.

        One day at a time: the day's archive is on disk (temp file, fsync, rename; merged by id) before
        the same rows are deleted in the same transaction; the YAML files go after the commit. A crash
        before the commit leaves the rows (archived again, once, next time); one after it leaves YAML
        files without rows, which the sweep at the end removes (archiving any the archive lacks).
        The baselines are not touched.
        """
        if days < 0:
            raise RecordError(f"anomaly retention days must be 0 or more, not {days}")
        cutoff = retention_cutoff(days, now)
        files: list[Path] = []
        archived = removed = 0
        while True:
            with self._lock:
                oldest = self._db.execute(
                    "SELECT MIN(detected_at) FROM anomalies WHERE detected_at < ?", (cutoff.timestamp(),)
                ).fetchone()
            if oldest[0] is None:
                break
            day = datetime.fromtimestamp(float(oldest[0]), UTC).date()
            end = min(day_start(day + timedelta(days=1)), cutoff)
            with self._transaction() as db:
                rows = db.execute(
                    "SELECT id, detected_at, body FROM anomalies WHERE detected_at < ? ORDER BY detected_at, id",
                    (end.timestamp(),),
                ).fetchall()
                path = self._archive_path(day)
                write_archive(path, [str(r[2]) for r in rows])
                db.executemany("DELETE FROM anomalies WHERE id = ?", [(r[0],) for r in rows])
            files.append(path)
            archived += len(rows)
            for anomaly_id_, detected_at, _ in rows:
                removed += self._remove_file(self._file_at(str(anomaly_id_), float(detected_at)))
        swept_files, swept_archived, swept_removed = self._sweep(cutoff)
        files += [f for f in swept_files if f not in files]
        return AnomalyRetentionResult(
            cutoff=cutoff, archived=archived + swept_archived, deleted=archived, files=files,
            yaml_removed=removed + swept_removed,
        )

    def _archive_path(self, day: date) -> Path:
        archive_dir = self.data_dir / ARCHIVE_DIR
        archive_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return archive_dir / f"anomalies-{day.isoformat()}.jsonl.gz"

    def _file_at(self, anomaly_id_: str, detected_at: float) -> Path:
        return self.files_dir / _day(datetime.fromtimestamp(detected_at, UTC)) / f"{anomaly_id_}.yaml"

    @staticmethod
    def _remove_file(path: Path) -> int:
        """1 when the file was there and is gone; a failure is logged and left to the next run's sweep."""
        try:
            path.unlink()
        except FileNotFoundError:
            return 0
        except OSError as exc:
            logger.warning("anomaly retention: could not remove %s (%s); the next run tries again", path, exc)
            return 0
        with contextlib.suppress(OSError):  # the day's directory, once it is empty
            path.parent.rmdir()
        return 1

    def _sweep(self, cutoff: datetime) -> tuple[list[Path], int, int]:
        """Remove the YAML files of anomalies before the cutoff that have no row (a crash after the commit).

        An orphan the day's archive lacks (its save failed after the file was written) is archived first,
        so no anomaly leaves the disk unarchived. A file that does not parse as an anomaly is left alone.
        Returns the archive files written, the anomalies archived and the YAML files removed.
        """
        orphans: dict[date, list[tuple[Path, Anomaly]]] = {}
        for folder in sorted(self.files_dir.glob("????-??-??")):
            try:
                folder_day = date.fromisoformat(folder.name)
            except ValueError:
                continue
            if not folder.is_dir() or day_start(folder_day) >= cutoff:
                continue
            for path in sorted(folder.glob("*.yaml")):
                try:
                    found = Anomaly.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
                except (OSError, ValueError, yaml.YAMLError) as exc:
                    logger.warning("anomaly retention: left %s alone, it is not a readable anomaly (%s)", path, exc)
                    continue
                at = found.detected_at if found.detected_at.tzinfo else found.detected_at.replace(tzinfo=UTC)
                if at >= cutoff:
                    continue
                with self._lock:
                    row = self._db.execute("SELECT 1 FROM anomalies WHERE id = ?", (found.id,)).fetchone()
                if row is None:
                    orphans.setdefault(at.astimezone(UTC).date(), []).append((path, found))
            with contextlib.suppress(OSError):
                folder.rmdir()  # only succeeds when empty
        files: list[Path] = []
        archived = removed = 0
        for day, found_on_day in sorted(orphans.items()):
            path = self._archive_path(day)
            known = archived_ids(path)
            missing = {a.id: a.model_dump_json() for _, a in found_on_day if a.id not in known}
            if missing:
                write_archive(path, missing.values())
                files.append(path)
                archived += len(missing)
            removed += sum(self._remove_file(file) for file, _ in found_on_day)
        return files, archived, removed

    # -- baselines ---------------------------------------------------------------------------------

    def baseline(self, category: str, step: str = "") -> BaselineRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM anomaly_baselines WHERE category = ? AND step = ?", (category, step)
            ).fetchone()
        return None if row is None else BaselineRow.model_validate_json(str(row[0]))

    def baselines(self, category: str | None = None) -> list[BaselineRow]:
        sql = "SELECT body FROM anomaly_baselines"
        params: Sequence[object] = ()
        if category is not None:
            sql += " WHERE category = ?"
            params = (category,)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY category, step", params).fetchall()
        return [BaselineRow.model_validate_json(str(r[0])) for r in rows]

    def save_baselines(self, rows: Iterable[BaselineRow]) -> None:
        """Write a run's baselines in one transaction; beyond MAX_BASELINE_KEYS the stalest keys are forgotten."""
        with self._transaction() as db:
            for row in rows:
                db.execute(
                    "INSERT INTO anomaly_baselines (category, step, body, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (category, step) DO UPDATE SET body = excluded.body,"
                    " updated_at = excluded.updated_at",
                    (row.category, row.step, row.model_dump_json(), row.updated_at.timestamp()),
                )
            db.execute(
                "DELETE FROM anomaly_baselines WHERE (category, step) IN (SELECT category, step FROM"
                " anomaly_baselines ORDER BY updated_at DESC, category, step LIMIT -1 OFFSET ?)",
                (MAX_BASELINE_KEYS,),
            )


def _yaml(anomaly: Anomaly) -> str:
    body = yaml.safe_dump(anomaly.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=120)
    return f"# operate-mcp anomaly {anomaly.id} (run {anomaly.run_id})\n{body}"


def _alert_of(anomaly: Anomaly, intent: str | None) -> tuple[FailureAlert, dict[str, object]]:
    """The failure-log line of an anomaly (status=anomaly-P1, step=its rule) and its webhook details."""
    alert = FailureAlert(
        at=anomaly.detected_at,
        request_id=anomaly.run_id,
        intent=intent or " ".join(x for x in (anomaly.category, anomaly.target) if x) or "-",
        status=f"anomaly-{anomaly.severity}",
        step=anomaly.rule,
        error=f"expected {anomaly.expected}; actual {anomaly.actual}",
    )
    details: dict[str, object] = redact(json.loads(anomaly.model_dump_json()))
    return alert, {"anomaly": details}
