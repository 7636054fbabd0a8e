"""Search reads small ids from a narrow index (schema 5) and stays exact: totals, pages and facets equal a
count over the matching records themselves, before and after a version 4 database is upgraded in place."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.query import fold
from operate_mcp.records.store import _BACKFILL, _MIGRATIONS, NAMESPACE_SEPARATOR, RecordStore, SearchPage

T0 = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.ROLLED_BACK, RunStatus.RUNNING]
INTENTS = ["deploy cart", "Deploy Cart", "scale api", "restart worker", "Straße sperren", "roll back cart"]
NAMESPACES = [["shop"], ["payments"], ["shop", "payments"], [], ["db"], ["Shop"], ["edge", "db", "shop"]]
ERRORS = [None, 'deployments.apps "cart" is forbidden', "Back-off pulling image: ImagePullBackOff",
          'deployment "cart" exceeded its progress deadline']


def record(n: int, **fields: object) -> ExecutionRecord:
    started = T0 + timedelta(minutes=7 * (n // 3))  # three runs share each start time: the page breaks ties
    return ExecutionRecord.model_validate({
        "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}",
        "started_at": started,
        "finished_at": started + timedelta(seconds=30),
        "triggered_by": "cli",
        "caller": ["alice", "bob"][n % 2],
        "intent": INTENTS[n % len(INTENTS)],
        "status": STATUSES[n % len(STATUSES)],
        "duration_seconds": float(n % 400),
        "namespaces": NAMESPACES[n % len(NAMESPACES)],
        "tags": ["ci"] if n % 4 == 0 else [],
        "error": ERRORS[n % len(ERRORS)],
        **fields,
    })


RECORDS = [record(n) for n in range(240)]


def nocase(text: str) -> str:
    return text.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def by_count(store: RecordStore, query: str) -> dict[str, dict[str, int]]:
    """Every facet counted in Python over the matching records (NOCASE keys), nothing shared with search."""
    matches = list(store.iter_matches(query))
    spaces = Counter(nocase(n) for r in matches for n in r.namespaces)
    return {
        "status": dict(Counter(r.status.value for r in matches)),
        "intent": dict(Counter(nocase(r.intent) for r in matches)),
        "namespace": dict(spaces),
    }


def shown(page: SearchPage) -> dict[str, dict[str, int]]:
    return {
        "status": {f.value: f.count for f in page.facets.status},
        "intent": {nocase(f.value): f.count for f in page.facets.intent},
        "namespace": {nocase(f.value): f.count for f in page.facets.namespace},
    }


QUERIES = [
    "forbidden", "imagepull*", '"progress deadline"', "(status:failed OR status:partial) cart -tag:ci",
    "status:failed namespace:shop", "status:failed after:2026-02-03", "intent:deploy* duration:>100",
    "tag:ci", "-tag:ci", "namespace:pay*", "caller:bob forbidden", "NOT forbidden", "cart OR worker",
    "status:running -namespace:shop", "nothing-matches-this",
]


def assert_exact(store: RecordStore, query: str) -> None:
    newest_first = [r.id for r in store.iter_matches(query)]
    for page, per_page in ((1, 50), (2, 7)):
        result = store.search(query, page=page, per_page=per_page)
        assert result.total == len(newest_first), query
        assert [r.id for r in result.items] == newest_first[(page - 1) * per_page:page * per_page], query
        assert shown(result) == by_count(store, query), query


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    s = RecordStore(tmp_path)
    s.save_many(RECORDS)
    return s


@pytest.mark.parametrize("query", QUERIES)
def test_totals_pages_and_facets_equal_a_count_over_the_matching_records(store: RecordStore, query: str) -> None:
    for n in range(0, 240, 11):  # saved again: another status, intent and namespaces
        store.save(record(n, status=RunStatus.FAILED, intent="Deploy Cart", namespaces=["payments", "edge"]))

    assert_exact(store, query)


def test_each_intent_and_namespace_list_is_stored_once(store: RecordStore) -> None:
    values = [str(v) for (v,) in store._read("SELECT value FROM facet_values ORDER BY value")]

    assert len(values) == len(set(values))
    assert set(values) == {*INTENTS, *(NAMESPACE_SEPARATOR.join(n) for n in NAMESPACES)}


def executed(store: RecordStore, query: str) -> str:
    """The statement a search ran to read its matches, with its values inlined."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    try:
        store.search(query)
    finally:
        store._db.set_trace_callback(None)
    return next(s for s in statements if "intent_id, namespaces_id FROM runs" in s and "EXPLAIN" not in s)


def outer_plan(store: RecordStore, sql: str) -> str:
    return next(str(d) for _, parent, _, d in store._read(f"EXPLAIN QUERY PLAN {sql}") if parent == 0)


@pytest.mark.parametrize("query", ["forbidden", '"progress deadline"', "tag:ci", "namespace:shop"])
def test_matches_found_by_seq_are_read_from_the_narrow_index_not_the_table(store: RecordStore, query: str) -> None:
    assert outer_plan(store, executed(store, query)).startswith("SEARCH runs USING COVERING INDEX runs_seq ")


def test_a_filter_on_a_column_the_narrow_index_lacks_still_reads_the_table(store: RecordStore) -> None:
    sql = executed(store, "caller:bob tag:ci")

    assert "INDEXED BY" not in sql and "runs_seq" not in outer_plan(store, sql)
    assert_exact(store, "caller:bob tag:ci")


def test_retention_forgets_the_values_no_run_refers_to(store: RecordStore) -> None:
    store.save(record(239, intent="restart worker now"))  # the newest run changes intent
    store.save_many(record(300 + n, intent=f"one-off {n}", namespaces=[f"ns-{n}"],
                           started_at=T0 - timedelta(days=3, minutes=n)) for n in range(20))

    result = store.apply_retention(days=0, now=T0 + timedelta(hours=13))

    kept = [r for r in store.iter_matches("")]
    assert result.deleted == 20 + 240 - len(kept) and kept
    values = {str(v) for (v,) in store._read("SELECT value FROM facet_values")}
    assert values == {r.intent for r in kept} | {NAMESPACE_SEPARATOR.join(r.namespaces) for r in kept}
    assert_exact(store, "cart OR worker")


# -- the upgrade from schema 4 -------------------------------------------------------------------------


def version_4_database(data_dir: Path, records: list[ExecutionRecord], *, analyzed: bool = False) -> None:
    """A store as operate-mcp wrote it at schema 4: intent and namespaces as strings in `runs` and its indexes;
    `analyzed`: with the planner statistics `PRAGMA optimize` leaves after searches."""
    db = sqlite3.connect(data_dir / "records.db", isolation_level=None)
    db.create_function("search_fold", 1, lambda t: None if t is None else fold(t), deterministic=True)
    db.execute("BEGIN")
    for target, migration in enumerate(_MIGRATIONS[:4]):
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
        if target + 1 in _BACKFILL:
            _BACKFILL[target + 1](db, data_dir)
    for r in records:
        seq = db.execute(
            "INSERT INTO runs (id, started_at, finished_at, status, intent, triggered_by, caller, purpose,"
            " duration_seconds, failed_step, intent_key, triggered_by_key, caller_key, failed_step_key, category,"
            " namespaces) VALUES (?, ?, ?, ?, ?, ?, ?, 'operate', ?, NULL, ?, ?, ?, NULL, ?, ?) RETURNING seq",
            (r.id, r.started_at.timestamp(), r.finished_at and r.finished_at.timestamp(), r.status.value, r.intent,
             r.triggered_by, r.caller, r.duration_seconds, fold(r.intent), fold(r.triggered_by), fold(r.caller),
             r.category, NAMESPACE_SEPARATOR.join(r.namespaces)),
        ).fetchone()[0]
        db.execute("INSERT INTO run_records (seq, record) VALUES (?, ?)", (seq, r.model_dump_json()))
        db.executemany("INSERT INTO run_tags (run, tag) VALUES (?, ?)", [(seq, fold(t)) for t in r.tags])
        db.executemany("INSERT INTO run_namespaces (run, namespace) VALUES (?, ?)", [(seq, n) for n in r.namespaces])
        db.execute("INSERT INTO runs_fts (rowid, intent, output, logs, error) VALUES (?, ?, '', '', ?)",
                   (seq, r.intent, r.error or ""))
    db.execute("PRAGMA user_version = 4")
    if analyzed:
        db.execute("ANALYZE")
    db.execute("COMMIT")
    db.close()


@pytest.mark.parametrize("analyzed", [False, True], ids=["never analyzed", "analyzed"])
def test_a_version_4_database_is_upgraded_in_place_and_searches_exactly(tmp_path: Path, analyzed: bool) -> None:
    version_4_database(tmp_path, RECORDS, analyzed=analyzed)

    with RecordStore(tmp_path) as store:
        assert store._read("PRAGMA user_version")[0][0] == 5
        # the rebuilt indexes have planner statistics if the old ones had; a store never analyzed gets none yet
        kept = store._read("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")[0][0]
        stats = {str(i) for (i,) in store._read("SELECT idx FROM sqlite_stat1")} if kept else set()
        assert ("runs_seq" in stats) is analyzed
        assert "namespaces" not in {str(c[1]) for c in store._read("PRAGMA table_info(runs)")}
        resolved = store._read(
            "SELECT runs.intent, i.value, n.value, r.record FROM runs JOIN facet_values AS i ON i.id = runs.intent_id"
            " JOIN facet_values AS n ON n.id = runs.namespaces_id JOIN run_records AS r ON r.seq = runs.seq")
        assert len(resolved) == len(RECORDS)
        for intent, stored_intent, joined, raw in resolved:
            assert stored_intent == intent
            assert joined == NAMESPACE_SEPARATOR.join(ExecutionRecord.model_validate_json(str(raw)).namespaces)
        for query in ["", *QUERIES]:
            assert_exact(store, query)

        store.save(record(500, intent="scale api", namespaces=["db", "edge"]))  # saving goes on as before
        store.save(record(7, status=RunStatus.FAILED, intent="brand new intent"))
        for query in ["", "forbidden", "status:failed namespace:db"]:
            assert_exact(store, query)
