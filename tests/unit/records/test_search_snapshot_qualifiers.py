"""Run search by what a run is and what the cluster showed around it: `category:`, `image:` and `reason:`
against a seeded store of hand-made records with before/after snapshots; index use; the upgrade from schema 2."""

from __future__ import annotations

import gzip
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.model.observation import ContainerImage, PodState, Snapshot, WorkloadState
from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus
from operate_mcp.records.query import QuerySyntaxError, compile_query, fold
from operate_mcp.records.store import _MIGRATIONS, RecordStore


def day(n: int) -> datetime:
    return datetime(2026, 4, n, 10, 0, tzinfo=UTC)


def rid(n: int) -> str:
    return f"run-{int(day(n).timestamp() * 1000):013d}-{n:08x}"


def pod(name: str, *images: tuple[str, str], waiting: str = "", terminated: str = "") -> PodState:
    return PodState(name=name, namespace="shop", waiting_reason=waiting, last_termination_reason=terminated,
                    images=[ContainerImage(container="app", image=i, image_id=d) for i, d in images])


def snap(n: int, *, pods: Sequence[PodState] = (), workloads: Sequence[WorkloadState] = (),
         events: Sequence[str] = ()) -> Snapshot:
    return Snapshot(at=day(n), pods=list(pods), workloads=list(workloads), events=list(events))


NGINX_OLD = ("nginx:1.25", "docker.io/library/nginx@sha256:aaa111")
NGINX_NEW = ("nginx:1.27", "")
CHECKOUT = "registry.example.com/shop/checkout:v2"

RECORDS: dict[int, dict[str, object]] = {
    1: {"category": "update", "status": RunStatus.FAILED,
        "before": snap(1, pods=[pod("web-1", NGINX_OLD)]),
        "after": snap(1, pods=[pod("web-2", NGINX_NEW, waiting="ImagePullBackOff")],
                      events=["Pod/web-2: Warning Failed (x3): Failed to pull image \"nginx:1.27\""])},
    2: {"category": "scale", "status": RunStatus.PARTIAL,
        "before": snap(2, workloads=[WorkloadState(kind="Deployment", name="checkout", namespace="shop",
                                                   images=[ContainerImage(container="app", image=CHECKOUT)])]),
        "after": snap(2, pods=[pod("checkout-1", (CHECKOUT, ""), terminated="OOMKilled")])},
    3: {"category": "restart", "status": RunStatus.SUCCEEDED,
        "before": snap(3, pods=[pod("api-1", waiting="CrashLoopBackOff")],
                       events=["Warning BackOff (x5) Pod/api-1: Back-off restarting failed container"])},
    4: {"category": "delete", "status": RunStatus.SUCCEEDED},
    5: {"category": "update", "status": RunStatus.SUCCEEDED,
        "after": snap(5, events=["Pod/web-3: Normal Scheduled: Successfully assigned shop/web-3"])},
    6: {"category": "make-ha", "status": RunStatus.SUCCEEDED,
        "after": snap(6, pods=[pod("cart-1", ("Registry.Example.com/Shop/Cart:V1", ""))])},
}
ALL = set(RECORDS)


def make(n: int) -> ExecutionRecord:
    return ExecutionRecord.model_validate({
        "id": rid(n), "started_at": day(n), "finished_at": day(n) + timedelta(seconds=30), "triggered_by": "cli",
        "caller": "alice", "intent": f"run {n}", "duration_seconds": 30.0, "namespaces": ["shop"], **RECORDS[n],
    })


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    s = RecordStore(tmp_path_factory.mktemp("snapshots"))
    s.save_many(make(n) for n in RECORDS)
    return s


def numbers(store: RecordStore, query: str) -> set[int]:
    return {int(item.id.rsplit("-", 1)[1], 16) for item in store.search(query, per_page=500).items}


VALID: list[tuple[str, set[int]]] = [
    # category: one of the categories, any case
    ("category:update", {1, 5}),
    ("category:UPDATE", {1, 5}),
    ("category:make-ha", {6}),
    ("-category:update", ALL - {1, 5}),
    ("category:update OR category:scale", {1, 2, 5}),
    ("category:autoscale", set()),
    # image: every image and image id in the before/after pods and workloads; * globs; any case
    ("image:nginx:1.27", {1}),
    ("image:nginx:1.25", {1}),  # the image before the update counts too
    ("image:nginx*", {1}),
    ("image:*@sha256:aaa111", {1}),
    (f"image:{CHECKOUT}", {2}),  # from the workload before and the pod after: one match
    ("image:registry.example.com/shop/*", {2, 6}),
    ("image:*:v1", {6}),
    ("image:nginx", set()),  # a whole image name, tag included, unless globbed
    ("image:*", {1, 2, 6}),
    # reason: pod waiting / last termination reasons and Warning event reasons; Normal events do not count
    ("reason:ImagePullBackOff", {1}),
    ("reason:oomkilled", {2}),
    ("reason:*BackOff", {1, 3}),
    ("reason:Failed", {1}),
    ("reason:BackOff", {3}),
    ("reason:Scheduled", set()),
    ("-reason:*", {4, 5, 6}),
    # with the rest of the language
    ("category:update reason:*", {1}),
    ("category:update status:succeeded", {5}),
    ("(reason:OOMKilled OR image:nginx*) -status:failed", {2}),
]


@pytest.mark.parametrize(("query", "expected"), VALID, ids=[q for q, _ in VALID])
def test_query_matches_the_hand_worked_records(store: RecordStore, query: str, expected: set[int]) -> None:
    assert numbers(store, query) == expected


INVALID: list[tuple[str, str, int]] = [
    ("category:updates", "category: unknown category 'updates'; use one of update, scale, autoscale, make-ha, "
                         "backup, rollback, restart, delete, remediate, other", 10),
    ("category:update*", "category: unknown category 'update*'", 10),
    ("status:failed image:", "image: needs a value", 21),
    ("reason:", "reason: needs a value", 8),
]


@pytest.mark.parametrize(("query", "message", "column"), INVALID, ids=[q for q, _, _ in INVALID])
def test_bad_values_point_at_the_problem(store: RecordStore, query: str, message: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        store.search(query)
    assert message in str(caught.value)
    assert caught.value.column == column


def plan(store: RecordStore, query: str) -> str:
    compiled = compile_query(query)
    rows = store._read(f"EXPLAIN QUERY PLAN {compiled.ctes}SELECT seq, started_at, status, intent_id FROM runs "
                       f"WHERE {compiled.where}", compiled.params)
    return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(
    ("query", "lookup"),
    [("category:update", "SEARCH runs USING COVERING INDEX runs_category (category=?)"),
     ("image:nginx:1.27", "SEARCH run_images USING PRIMARY KEY (image=?)"),
     ("image:nginx*", "SEARCH run_images USING PRIMARY KEY (image>? AND image<?)"),
     ("reason:OOMKilled", "SEARCH run_reasons USING PRIMARY KEY (reason=?)"),
     ("reason:Crash*", "SEARCH run_reasons USING PRIMARY KEY (reason>? AND reason<?)")],
)
def test_the_new_qualifiers_are_index_lookups(store: RecordStore, query: str, lookup: str) -> None:
    shown = plan(store, query)
    assert lookup in shown and "SCAN" not in shown, shown


def test_saving_a_run_again_replaces_its_images_and_reasons(tmp_path: Path) -> None:
    with RecordStore(tmp_path) as s:
        s.save(make(1))
        s.save(make(1).model_copy(update={"after": snap(1, pods=[pod("web-2", ("nginx:1.28", ""))]),
                                          "category": "restart"}))
        assert numbers(s, "image:nginx:1.28 category:restart") == {1}
        assert numbers(s, "image:nginx:1.27") == set() and numbers(s, "reason:*") == set()


# -- the upgrade from schema 2 ------------------------------------------------------------------------


def version_2_database(data_dir: Path, records: list[ExecutionRecord]) -> None:
    """A store as operate-mcp wrote it at schema 2: the runs row without category, no image or reason tables."""
    db = sqlite3.connect(data_dir / "records.db")
    db.create_function("search_fold", 1, lambda t: None if t is None else fold(t), deterministic=True)
    for migration in _MIGRATIONS[:2]:
        for statement in migration.split(";"):
            if statement.strip():
                db.execute(statement)
    for r in records:
        seq = db.execute(
            "INSERT INTO runs (id, started_at, finished_at, status, intent, triggered_by, caller, purpose,"
            " duration_seconds, failed_step, intent_key, triggered_by_key, caller_key, failed_step_key)"
            " VALUES (?, ?, ?, ?, ?, 'cli', 'alice', 'operate', ?, ?, ?, 'cli', 'alice', ?) RETURNING seq",
            (r.id, r.started_at.timestamp(), r.finished_at and r.finished_at.timestamp(), r.status.value, r.intent,
             r.duration_seconds, r.failed_step, fold(r.intent), r.failed_step and fold(r.failed_step)),
        ).fetchone()[0]
        db.execute("INSERT INTO run_records (seq, record) VALUES (?, ?)", (seq, r.model_dump_json()))
        db.executemany("INSERT INTO run_namespaces (run, namespace) VALUES (?, ?)", [(seq, n) for n in r.namespaces])
        db.execute("INSERT INTO runs_fts (rowid, intent, output, logs, error) VALUES (?, ?, '', '', '')",
                   (seq, r.intent))
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()


def test_a_version_2_database_is_upgraded_and_filled_from_the_stored_records(tmp_path: Path) -> None:
    failed = make(1).model_copy(update={
        "failed_step": "kubectl set image deployment/web web=nginx:1.27 -n shop",
        "commands": [CommandRecord(index=1, argv=["kubectl", "set", "image", "deployment/web", "web=nginx:1.27",
                                                 "-n", "shop"], exit_code=1, duration_seconds=1.0)],
    })
    archived = make(4).model_copy(update={"id": rid(4).replace("-00000004", "-000000aa"),
                                          "started_at": datetime(2026, 3, 1, 9, tzinfo=UTC), "finished_at": None,
                                          "status": RunStatus.FAILED, "category": "scale"})
    version_2_database(tmp_path, [failed, *(make(n) for n in (2, 3, 5, 6))])
    (tmp_path / "archive").mkdir()
    (tmp_path / "archive" / "runs-2026-03-01.jsonl.gz").write_bytes(
        gzip.compress((archived.model_dump_json() + "\n").encode()))

    with RecordStore(tmp_path) as s:
        assert s._read("PRAGMA user_version")[0][0] == 5
        assert numbers(s, "category:update") == {1, 5}
        assert numbers(s, "image:nginx*") == {1} and numbers(s, "reason:*BackOff") == {1, 3}
        assert s._read("SELECT failed_group FROM runs WHERE id = ?", (rid(1),))[0][0] == "set image deployment"
        # the daily aggregates hold the stored runs and the archived one; the archive day counts as pruned
        assert s.pruned_before() == datetime(2026, 3, 2, tzinfo=UTC)
        days = s._read("SELECT day, category, status, SUM(runs) FROM daily WHERE namespace = '*'"
                       " GROUP BY day, category, status ORDER BY day")
        assert days == [("2026-03-01", "scale", "failed", 1), ("2026-04-01", "update", "failed", 1),
                        ("2026-04-02", "scale", "partial", 1), ("2026-04-03", "restart", "succeeded", 1),
                        ("2026-04-05", "update", "succeeded", 1), ("2026-04-06", "make-ha", "succeeded", 1)]
        assert s.daily_steps(category="update") == [("set image deployment", 1)]
