"""Run search: the query language against a seeded store of 30 hand-made records.

Record n started on 2026-01-n at 10:00 UTC; the table below lists, for each query, the record
numbers it must return (worked out by hand from SEED), or the error and the column it points at.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus
from operate_mcp.records.query import QuerySyntaxError, compile_query
from operate_mcp.records.store import RecordStore


def rid(n: int) -> str:
    return f"run-{int(day(n).timestamp() * 1000):013d}-{n:08x}"


def day(n: int) -> datetime:
    return datetime(2026, 1, n, 10, 0, tzinfo=UTC)


@dataclass
class Seed:
    status: str
    intent: str
    ns: list[str]
    tags: list[str]
    resources: list[str]
    triggered_by: str
    duration: float
    caller: str = "alice"
    purpose: str = "operate"
    parent: int | None = None
    argv: list[str] | None = None
    exit_code: int = 0
    out: str = ""
    err: str = ""
    logs: list[str] = field(default_factory=list)
    step: str | None = None
    error: str | None = None


S, F, P, RB, INT, R = "succeeded", "failed", "partial", "rolled_back", "interrupted", "running"
CO, API_ = "deployment/checkout", "deployment/my-api"
INJECTION_INTENT = "test \"quotes\" and '; DROP TABLE runs; --"

SEED: dict[int, Seed] = {
    1: Seed(S, "deploy checkout v2", ["shop"], ["ci"], [CO], "cli", 45,
            argv=["kubectl", "set", "image", CO, "app=checkout:v2"], out="deployment.apps/checkout image updated"),
    2: Seed(F, "deploy checkout v3", ["shop"], ["ci"], [CO], "mcp:claude-code", 130, caller="bob",
            argv=["kubectl", "rollout", "status", CO], exit_code=1, err="error: timed out waiting for the condition",
            step="kubectl rollout status deployment/checkout",
            error="exit 1: error: timed out waiting for the condition"),
    3: Seed(S, "scale my-api to 5", ["payments"], [], [API_], "mcp:claude-code", 12,
            argv=["kubectl", "scale", API_, "--replicas=5"], out="deployment.apps/my-api scaled"),
    4: Seed(P, "scale my-api to 10", ["payments"], ["release"], [API_], "api", 75,
            argv=["kubectl", "scale", API_, "--replicas=10"], exit_code=1,
            err='Error from server (Forbidden): deployments.apps "my-api" is forbidden',
            step="kubectl scale deployment/my-api --replicas=10",
            error='exit 1: Error from server (Forbidden): deployments.apps "my-api" is forbidden'),
    5: Seed(RB, "roll back checkout", ["shop"], ["rollback"], [CO], "mcp:claude-code", 30, purpose="rollback",
            parent=2),
    6: Seed(S, "make postgres HA", ["db"], ["ha"], ["statefulset/postgres"], "cli", 300),
    7: Seed(F, "make postgres HA", ["db"], ["ha", "ci"], ["statefulset/postgres"], "scheduler", 620, caller="bob",
            logs=["postgres-1 OOMKilled"], step="check:rollout", error="statefulset postgres did not become ready"),
    8: Seed(INT, "restart redis", ["cache"], [], ["deployment/redis"], "cli", 5),
    9: Seed(S, "Deploy Cart", ["shop"], ["ci"], ["deployment/cart"], "scheduler", 60),
    10: Seed(S, "deploy cart v2", ["shop"], ["ci", "canary"], ["deployment/cart"], "mcp:cursor", 61),
    11: Seed(F, "deploy search", ["search"], [], ["deployment/search"], "mcp:cursor", 90,
             argv=["kubectl", "set", "image", "deployment/search", "app=search:v9"],
             out="deployment.apps/search image updated", logs=["Back-off pulling image: ImagePullBackOff"],
             step="check:pods-ready", error="pods not ready: ImagePullBackOff"),
    12: Seed(S, "update configmap app-config", ["shop"], ["config"], ["configmap/app-config"], "cli", 2),
    13: Seed(S, "scale worker to 3", ["jobs"], [], ["deployment/worker"], "api", 8),
    14: Seed(F, INJECTION_INTENT, ["default"], ["security-test"], ["pod/test"], "api", 1,
             argv=["kubectl", "get", "pods"], exit_code=1, out='NEAR(x y) * "weird" output', step="kubectl get pods",
             error="exit 1: boom"),
    15: Seed(S, "rotate secret db-credentials", ["db"], ["security"], ["secret/db-credentials"], "cli", 3),
    16: Seed(P, "deploy checkout v4", ["shop", "payments"], ["ci"], [CO, "deployment/payments-gw"],
             "mcp:claude-code", 200, caller="bob", step="kubectl rollout status deployment/payments-gw",
             error='exit 1: deployment "payments-gw" exceeded its progress deadline'),
    17: Seed(S, "run smoke tests", ["qa"], ["ci", "smoke"], ["job/smoke"], "scheduler", 40),
    18: Seed(F, "run smoke tests", ["qa"], ["ci", "smoke"], ["job/smoke"], "scheduler", 41, step="check:smoke",
             error="connection refused"),
    19: Seed(S, "scale my-api to 3", ["payments"], [], [API_], "mcp:claude-code", 10),
    20: Seed(R, "deploy checkout v5", ["shop"], ["ci"], [CO], "mcp:claude-code", 0),
    21: Seed(S, "expand pvc data-postgres-0", ["db"], ["storage"], ["persistentvolumeclaim/data-postgres-0"], "cli",
             15),
    22: Seed(F, "expand pvc data-postgres-1", ["db"], ["storage"], ["persistentvolumeclaim/data-postgres-1"], "cli",
             20, argv=["kubectl", "patch", "pvc", "data-postgres-1"], exit_code=1,
             err='persistentvolumeclaims "data-postgres-1" is forbidden: exceeded quota: storage',
             step="kubectl patch pvc data-postgres-1",
             error='exit 1: persistentvolumeclaims "data-postgres-1" is forbidden: exceeded quota: storage'),
    23: Seed(S, "deploy ingress", ["edge"], [], ["ingress/web"], "api", 25),
    24: Seed(S, "déployer facturation", ["billing"], [], ["deployment/billing"], "cli", 33),
    25: Seed(RB, "roll back search", ["search"], ["rollback"], ["deployment/search"], "cli", 18, purpose="rollback",
             parent=11),
    26: Seed(S, "cordon node kwok-node-1", [], [], ["node/kwok-node-1"], "cli", 1),
    27: Seed(F, "deploy checkout v6", ["shop"], ["hotfix"], [CO], "api", 3600, caller="bob", step="kubectl apply -f -",
             error="the object has been modified; please apply your changes to the latest version"),
    28: Seed(S, "scale my-api to 5", ["payments"], ["ci"], [API_], "mcp:claude-code", 11),
    29: Seed(S, "annotate deployment checkout", ["shop"], [], [CO], "cli", 4),
    30: Seed(INT, "migrate orders schema", ["orders"], ["migration"], ["job/migrate-orders"], "scheduler", 900,
             error="executor pid 4242 died after 1 of 3 commands"),
}
ALL = set(SEED)


def make_record(n: int, seed: Seed) -> ExecutionRecord:
    commands = []
    if seed.argv is not None:
        commands.append(CommandRecord(index=1, argv=seed.argv, exit_code=seed.exit_code, duration_seconds=0.5,
                                      stdout=seed.out, stderr=seed.err))
    return ExecutionRecord(
        id=rid(n),
        started_at=day(n),
        finished_at=None if seed.status == R else day(n) + timedelta(seconds=seed.duration),
        triggered_by=seed.triggered_by,
        caller=seed.caller,
        intent=seed.intent,
        purpose=seed.purpose,
        parent_id=rid(seed.parent) if seed.parent else None,
        tags=seed.tags,
        status=RunStatus(seed.status),
        duration_seconds=seed.duration,
        namespaces=seed.ns,
        resources=seed.resources,
        commands=commands,
        log_excerpts=seed.logs,
        failed_step=seed.step,
        error=seed.error,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    s = RecordStore(tmp_path_factory.mktemp("records"))
    s.save_many(make_record(n, seed) for n, seed in SEED.items())
    return s


def numbers(store: RecordStore, query: str) -> set[int]:
    page = store.search(query, per_page=500)
    assert page.total == len(page.items)
    return {int(item.id.rsplit("-", 1)[1], 16) for item in page.items}


CHECKOUT = {1, 2, 5, 16, 20, 27, 29}
SHOP = {1, 2, 5, 9, 10, 12, 16, 20, 27, 29}
CI = {1, 2, 7, 9, 10, 16, 17, 18, 20, 28}
FAILED = {2, 7, 11, 14, 18, 22, 27}
SUCCEEDED = {1, 3, 6, 9, 10, 12, 13, 15, 17, 19, 21, 23, 24, 26, 28, 29}

VALID: list[tuple[str, set[int]]] = [
    # empty query: everything
    ("", ALL),
    ("   ", ALL),
    # status
    ("status:failed", FAILED),
    ("status:FAILED", FAILED),
    ("status:partial", {4, 16}),
    ("status:rolled_back", {5, 25}),
    ("status:interrupted OR status:running", {8, 20, 30}),
    ("-status:succeeded", ALL - SUCCEEDED),
    # intent: exact (case-insensitive) or * glob
    ("intent:deploy*", {1, 2, 9, 10, 11, 16, 20, 23, 27}),
    ('intent:"deploy checkout*"', {1, 2, 16, 20, 27}),
    ("intent:*postgres*", {6, 7, 21, 22}),
    ('intent:"make postgres ha"', {6, 7}),
    ("intent:make", set()),
    # tags, namespaces, resources (side tables)
    ("tag:ci", CI),
    ("tag:ci -status:succeeded", {2, 7, 16, 18, 20}),
    ("tag:smoke status:failed", {18}),
    ("tag:s*", {14, 15, 17, 18, 21, 22}),
    ("namespace:shop", SHOP),
    ("namespace:payments OR namespace:db", {3, 4, 16, 19, 28, 6, 7, 15, 21, 22}),
    ("namespace:shop namespace:payments", {16}),
    ("-namespace:shop", ALL - SHOP),
    ("namespace:s*p", SHOP),
    ("resource:deployment/checkout", CHECKOUT),
    ("resource:deploy/my-api", {3, 4, 19, 28}),
    ("resource:postgres", {6, 7}),
    ("resource:data-postgres-*", {21, 22}),
    ("resource:pvc/data-postgres-1", {22}),
    # who and how
    ("triggered_by:mcp:*", {2, 3, 5, 16, 19, 20, 28, 10, 11}),
    ("triggered_by:scheduler", {7, 9, 17, 18, 30}),
    ("triggered_by:MCP:CURSOR", {10, 11}),
    ("caller:bob", {2, 7, 16, 27}),
    (f"parent:{rid(2)}", {5}),
    ("purpose:rollback", {5, 25}),
    ("step:check:*", {7, 11, 18}),
    # duration, in seconds unless a unit is given
    ("duration:>60", {2, 4, 6, 7, 10, 11, 16, 27, 30}),
    ("duration:>=60", {2, 4, 6, 7, 9, 10, 11, 16, 27, 30}),
    ("duration:<5", {12, 14, 15, 20, 26, 29}),
    ("duration:=60", {9}),
    ("duration:60", {9}),
    ("duration:1m..5m", {2, 4, 6, 9, 10, 11, 16}),
    ("duration:>=1h", {27}),
    # dates: after = on or after midnight UTC, before = strictly before
    ("after:2026-01-25", {25, 26, 27, 28, 29, 30}),
    ("before:2026-01-03", {1, 2}),
    ("after:2026-01-10 before:2026-01-12", {10, 11}),
    ("after:2026-01-10T10:00:01Z before:2026-01-12", {11}),
    # free text (FTS5 over intent, command output, logs, errors)
    ("checkout", CHECKOUT),
    ("timed out", {2}),
    ('"timed out waiting"', {2}),
    ('"out timed"', set()),
    ("forbidden", {4, 22}),
    ("forbidden -quota", {4}),
    ("forbidden NOT quota", {4}),
    ("oomkilled OR imagepullbackoff", {7, 11}),
    ("deploy*", {1, 2, 3, 4, 9, 10, 11, 16, 20, 23, 24, 27, 29}),
    ("deployer", {24}),
    ("my-api", {3, 4, 19, 28}),
    ("postgres OR redis", {6, 7, 8, 21, 22}),
    ("v2", {1, 10}),
    ("kubectl", {1, 2, 3, 4, 11, 14, 16, 22, 27}),
    ("progress deadline status:partial", {16}),
    ('"has been modified"', {27}),
    ('""', set()),
    # boolean structure: implicit AND binds tighter than OR; NOT and - negate
    ('"smoke tests" status:failed', {18}),
    ("checkout AND (status:failed OR status:partial)", {2, 16, 27}),
    ("(tag:ci OR tag:hotfix) checkout -status:running", {1, 2, 16, 27}),
    ("NOT checkout namespace:shop", {9, 10, 12}),
    ("checkout OR status:interrupted", CHECKOUT | {8, 30}),
    ("status:failed OR tag:rollback namespace:search", FAILED | {25}),
    ("(status:failed OR tag:rollback) namespace:search", {11, 25}),
    ("-(namespace:shop OR namespace:payments) tag:ci", {7, 17, 18}),
    ("-tag:ci -namespace:shop status:succeeded", {3, 6, 13, 15, 19, 21, 23, 24, 26}),
    # injection attempts are data
    ("'; DROP TABLE runs; --", set()),
    ('"\'; DROP TABLE runs; --"', {14}),
    ('intent:"test \\"quotes\\" and \'; DROP TABLE runs; --"', {14}),
    ("intent:*DROP*", {14}),
    ("NEAR(x y)", {14}),
    ('"NEAR(x"', {14}),
    ("weird*", {14}),
    ("tag:\"ci' OR 1=1 --\"", set()),
    ("namespace:sh%", set()),
    ("namespace:sh_p", set()),
    ("namespace:sh_*", set()),
    ("caller:*\\", set()),
]


@pytest.mark.parametrize(("query", "expected"), VALID, ids=[q or "<empty>" for q, _ in VALID])
def test_query_matches_the_hand_worked_records(store: RecordStore, query: str, expected: set[int]) -> None:
    assert numbers(store, query) == expected


INVALID: list[tuple[str, str, int]] = [
    ("status:faild", "status: unknown status 'faild'", 8),
    ("stauts:failed", "unknown qualifier 'stauts:'", 1),
    ("error: timeout", "unknown qualifier 'error:'", 1),
    ("duration:>abc", "duration: expected seconds", 10),
    ("duration:>", "duration: expected seconds", 10),
    ("after:2026-02-30", "after: expected a date", 7),
    ("before:yesterday", "before: expected a date", 8),
    ("namespace:", "namespace: needs a value", 11),
    ("(status:failed", "this '(' is never closed", 1),
    ("a OR (b", "this '(' is never closed", 6),
    ("status:failed)", "')' without a matching '('", 14),
    ("tag:ci (namespace:shop OR)", "expected a term before ')'", 26),
    ("()", "empty parentheses", 2),
    ("tag:ci OR", "the query ends too early: expected a term after 'OR'", 10),
    ("NOT", "expected a term after 'NOT'", 4),
    ("AND tag:ci", "'AND' needs a term on each side", 1),
    ("tag:ci OR OR checkout", "'OR' needs a term on each side", 11),
    ('checkout "timed out', "unterminated quote", 10),
]


@pytest.mark.parametrize(("query", "message", "column"), INVALID, ids=[q for q, _, _ in INVALID])
def test_malformed_query_points_at_the_problem(store: RecordStore, query: str, message: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        store.search(query)
    error = caught.value
    assert message in str(error)
    assert error.column == column
    caret_line = str(error).splitlines()[-1]
    assert caret_line.index("^") - 2 == column - 1  # the caret sits under the column named


def test_the_table_covers_at_least_forty_queries() -> None:
    assert len(VALID) + len(INVALID) >= 40


def test_user_text_never_reaches_the_sql_text() -> None:
    payload = "'; DROP TABLE runs; -- NEAR( * \" x"
    for query in (f'"{payload.replace(chr(34), chr(92) + chr(34))}"', f'intent:"{payload.replace(chr(34), "")}"',
                  "tag:robert';DROP", "hello_world OR namespace:x%y"):
        compiled = compile_query(query)
        for fragment in ("DROP", "robert", "NEAR", "hello", "x%y"):
            assert fragment not in compiled.where


def test_injection_attempts_leave_the_schema_and_data_alone(store: RecordStore) -> None:
    def schema() -> list[tuple[object, ...]]:
        return store._read("SELECT type, name, sql FROM sqlite_master ORDER BY name")

    before = schema()
    for query in ("'; DROP TABLE runs; --", 'intent:"x\'; DELETE FROM runs; --"', '"a"" OR 1=1 --"',
                  "NEAR(a b, 1)", '"runs_fts MATCH *"', "* OR *", "x:*", "^x", 'NEAR(', '"', "a)"):
        with contextlib.suppress(QuerySyntaxError):  # a clean error is fine; a sqlite3 error or a changed db is not
            store.search(query)
    assert schema() == before
    assert store.count() == len(SEED)


def test_facets_count_every_match_not_just_the_page(store: RecordStore) -> None:
    page = store.search("tag:ci", per_page=2)

    assert page.total == 10 and len(page.items) == 2
    # tag:ci = 1 2 7 9 10 16 17 18 20 28: succeeded 1 9 10 17 28, failed 2 7 18, partial 16, running 20
    assert [(f.value, f.count) for f in page.facets.status] == [
        ("succeeded", 5), ("failed", 3), ("partial", 1), ("running", 1)
    ]
    # shop 1 2 9 10 16 20; payments 16 28; qa 17 18; db 7 (ties in name order)
    assert [(f.value, f.count) for f in page.facets.namespace] == [("shop", 6), ("payments", 2), ("qa", 2), ("db", 1)]
    assert (page.facets.intent[0].value, page.facets.intent[0].count) == ("run smoke tests", 2)


def test_pages_run_newest_first(store: RecordStore) -> None:
    ids = [rid(n) for n in (28, 20, 18, 17, 16, 10, 9, 7, 2, 1)]  # tag:ci, newest first

    assert [r.id for r in store.search("tag:ci", page=2, per_page=3).items] == ids[3:6]
    last = store.search("tag:ci", page=4, per_page=3)
    assert [r.id for r in last.items] == ids[9:] and last.pages == 4
    assert store.search("tag:ci", page=5, per_page=3).items == []


def test_search_rows_carry_what_a_list_needs(store: RecordStore) -> None:
    row = store.search("status:partial namespace:payments checkout").items[0]

    assert row.id == rid(16)
    assert row.namespaces == ["shop", "payments"] and row.tags == ["ci"]
    assert row.failed_step == "kubectl rollout status deployment/payments-gw"


def test_bad_page_numbers_are_refused(store: RecordStore) -> None:
    from operate_mcp.records.models import RecordError

    with pytest.raises(RecordError, match="page must be"):
        store.search("", page=0)
    with pytest.raises(RecordError, match="per_page must be between 1 and 500"):
        store.search("", per_page=501)


def test_store_file_is_private_and_in_wal_mode(store: RecordStore) -> None:
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert store._read("PRAGMA journal_mode")[0][0] == "wal"
    assert store._read("PRAGMA user_version")[0][0] == 5


def test_export_json_and_csv(store: RecordStore) -> None:
    import csv
    import io
    import json

    exported = json.loads(store.export("status:partial", "json"))
    assert [r["id"] for r in exported] == [rid(16), rid(4)]
    assert exported[0]["resources"] == ["deployment/checkout", "deployment/payments-gw"]

    rows = list(csv.DictReader(io.StringIO(store.export("status:partial", "csv"))))
    assert [r["id"] for r in rows] == [rid(16), rid(4)]
    assert rows[0]["namespaces"] == "shop;payments" and rows[0]["status"] == "partial"
    assert rows[1]["error"].startswith("exit 1: Error from server (Forbidden)")


def test_csv_cells_cannot_become_spreadsheet_formulas(tmp_path: Path) -> None:
    with RecordStore(tmp_path) as s:
        s.save(ExecutionRecord(id=rid(1), started_at=day(1), triggered_by="cli", caller="=cmd|' /C calc'!A0",
                               intent="@SUM(1+1)", status=RunStatus.FAILED, error="-2+3"))
        import csv
        import io

        row = next(csv.DictReader(io.StringIO(s.export("", "csv"))))
    assert row["intent"] == "'@SUM(1+1)" and row["caller"].startswith("'=") and row["error"] == "'-2+3"


def fit(terms: list[str], sep: str = " ") -> str:
    """As many whole terms as fit in the 2000-character limit."""
    query = ""
    for term in terms:
        longer = f"{query}{sep}{term}" if query else term
        if len(longer) > 2000:
            return query
        query = longer
    return query


@pytest.mark.parametrize(
    "query",
    [
        fit([f"tag:t{i}" if i % 2 else f"w{i}" for i in range(400)]),
        fit([f"namespace:n{i}" for i in range(200)], " OR "),
        fit([f"-w{i}" for i in range(600)]),
        fit([f"-tag:t{i}" for i in range(300)]),
        "(" * 32 + "checkout" + ")" * 32,
    ],
    ids=["mixed", "or-chain", "negated-words", "negated-qualifiers", "nested-32"],
)
def test_the_largest_allowed_queries_run(store: RecordStore, query: str) -> None:
    assert len(query) > 1900 or query.startswith("(")
    store.search(query)


def test_oversized_and_overnested_queries_are_refused(store: RecordStore) -> None:
    with pytest.raises(QuerySyntaxError, match="longer than 2000 characters"):
        store.search("a " * 1001)
    with pytest.raises(QuerySyntaxError, match="nest deeper than 32 levels") as caught:
        store.search("(" * 33 + "a" + ")" * 33)
    assert caught.value.column == 33
