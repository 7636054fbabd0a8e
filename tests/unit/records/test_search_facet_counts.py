"""Search facets stay exact: the counts kept for the empty search, and the facets worked out from the
indexes for a filtered one, equal a GROUP BY over every matching run after saves, re-saves and retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.store import Facets, RecordStore

T0 = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)
STATUSES = [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.RUNNING]
INTENTS = ["deploy cart", "Deploy Cart", "scale api", "restart worker", "Straße sperren"]
NAMESPACES = [["shop"], ["payments"], ["shop", "payments"], [], ["db"], ["Shop"]]


def record(n: int, **fields: object) -> ExecutionRecord:
    started = T0 + timedelta(hours=n)
    return ExecutionRecord.model_validate({
        "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}",
        "started_at": started,
        "finished_at": started + timedelta(seconds=10),
        "triggered_by": "cli",
        "caller": "alice",
        "intent": INTENTS[n % len(INTENTS)],
        "status": STATUSES[n % len(STATUSES)],
        "duration_seconds": 10.0,
        "namespaces": NAMESPACES[n % len(NAMESPACES)],
        "tags": ["ci"] if n % 3 == 0 else [],
        **fields,
    })


def counted(store: RecordStore, where: str = "1", params: tuple[object, ...] = ()) -> dict[str, dict[str, int]]:
    """Every facet by a plain GROUP BY over the matching runs (NOCASE keys), for comparison."""
    runs = f"SELECT seq FROM runs WHERE {where}"
    facets: dict[str, dict[str, int]] = {}
    for name, sql in {
        "status": f"SELECT status, COUNT(*) FROM runs WHERE seq IN ({runs}) GROUP BY status",
        "intent": f"SELECT lower(intent), COUNT(*) FROM runs WHERE seq IN ({runs}) GROUP BY intent COLLATE NOCASE",
        "namespace": f"SELECT lower(namespace), COUNT(*) FROM run_namespaces WHERE run IN ({runs})"
        " GROUP BY namespace",
    }.items():
        facets[name] = {str(v): int(str(n)) for v, n in store._read(sql, params * 1)}
    return facets


def shown(facets: Facets, top: int = 10) -> dict[str, dict[str, int]]:
    return {
        "status": {f.value: f.count for f in facets.status},
        "intent": {f.value.lower(): f.count for f in facets.intent},
        "namespace": {f.value.lower(): f.count for f in facets.namespace},
    }


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    s = RecordStore(tmp_path)
    s.save_many(record(n) for n in range(60))
    return s


def test_the_empty_search_reads_kept_counts_equal_to_a_full_count(store: RecordStore) -> None:
    for n in range(0, 60, 7):  # saved again: running -> failed, another intent, other namespaces
        store.save(record(n, status=RunStatus.FAILED, intent="roll back cart", namespaces=["edge", "shop"]))
    store.apply_retention(days=0, now=T0 + timedelta(hours=30))  # deletes the runs of 2026-01-01

    page = store.search("")

    assert page.total == store.count() == 46
    assert shown(page.facets) == counted(store)


def test_kept_counts_drop_values_no_run_has_any_more(store: RecordStore) -> None:
    store.apply_retention(days=0, now=T0 + timedelta(days=10))

    page = store.search("")

    assert page.total == 0 and page.facets == Facets()
    assert store._read("SELECT COUNT(*) FROM facet_counts") == [(0,)]


@pytest.mark.parametrize(
    ("query", "where", "params"),
    [
        ("tag:ci", "seq IN (SELECT run FROM run_tags WHERE tag = ?)", ("ci",)),
        ("status:failed", "status = ?", ("failed",)),
        ("namespace:shop", "seq IN (SELECT run FROM run_namespaces WHERE namespace = ?)", ("shop",)),
        ("-tag:ci", "seq NOT IN (SELECT run FROM run_tags WHERE tag = ?)", ("ci",)),
    ],
)
def test_filtered_facets_equal_a_group_by_over_the_matches(
    store: RecordStore, query: str, where: str, params: tuple[object, ...]
) -> None:
    store.save(record(3, status=RunStatus.FAILED, namespaces=["payments", "edge"]))

    page = store.search(query, per_page=5)

    assert page.total == len(store._read(f"SELECT seq FROM runs WHERE {where}", params))
    assert shown(page.facets) == counted(store, where, params)


def test_a_case_variant_intent_counts_in_one_group_shown_in_its_most_frequent_spelling(store: RecordStore) -> None:
    intent = next(f for f in store.search("cart").facets.intent if f.value.lower() == "deploy cart")

    assert intent.count == 24  # 12 "deploy cart" + 12 "Deploy Cart"
    assert intent.value in ("deploy cart", "Deploy Cart")
