"""Run search at its documented limits: 32 levels of NOT, - and parentheses run (and give the right
runs); the 33rd level is a clean error, never a traceback; qualifier values fold case in every script.

Expected results are worked out with Python set algebra from the runs each simple term matches, over
the hand-made records of test_search_grammar.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_search_grammar import ALL, SEED, make_record

from operate_mcp.cli import main
from operate_mcp.records.models import ExecutionRecord, RunStatus
from operate_mcp.records.query import MAX_NESTING, QuerySyntaxError
from operate_mcp.records.store import _MIGRATIONS, RecordStore


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("records")
    with RecordStore(path) as store:
        store.save_many(make_record(n, seed) for n, seed in SEED.items())
    return path


@pytest.fixture(scope="module")
def store(data_dir: Path) -> RecordStore:
    return RecordStore(data_dir)


def numbers(store: RecordStore, query: str) -> set[int]:
    page = store.search(query, per_page=500)
    assert page.total == len(page.items)
    return {int(item.id.rsplit("-", 1)[1], 16) for item in page.items}


# Terms whose matches the grammar tests pin down; `step:` and `-tag:` cover NULLs and side tables.
TERMS = ["tag:ci", "namespace:shop", "status:failed", "checkout", "deploy*", "duration:>60", "caller:bob",
         "step:check:*", '"smoke tests"', "forbidden", "intent:deploy*", "resource:deploy/my-api", "duration:30..90"]


@pytest.fixture(scope="module")
def term_sets(store: RecordStore) -> dict[str, set[int]]:
    return {term: numbers(store, term) for term in TERMS}


def negations(rnd: random.Random, query: str, expected: set[int], count: int) -> tuple[str, set[int]]:
    for _ in range(count):
        if rnd.random() < 0.5:
            query = f"NOT {query}"
        elif query.startswith("("):
            query = f"-{query}"
        else:
            query = f"-({query})"
        expected = ALL - expected
    return query, expected


# -- 32 levels run ------------------------------------------------------------------------------------


def nested(n: int, open_: str, close: str, term: str = "checkout") -> str:
    return open_ * n + term + close * n


CHECKOUT = {1, 2, 5, 16, 20, 27, 29}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (nested(32, "NOT ", ""), CHECKOUT),
        (nested(31, "NOT ", ""), ALL - CHECKOUT),
        (nested(32, "NOT ", "", "tag:ci"), {1, 2, 7, 9, 10, 16, 17, 18, 20, 28}),
        (nested(32, "-(", ")"), CHECKOUT),
        (nested(31, "-(", ")", "step:check:*"), ALL - {7, 11, 18}),  # runs without a failed step count too
        (nested(32, "(", ")"), CHECKOUT),
        (nested(32, "NOT (", ")", "namespace:shop"), {1, 2, 5, 9, 10, 12, 16, 20, 27, 29}),
        (nested(16, "NOT -(", ")"), CHECKOUT),
        (nested(32, "(NOT ", ")"), CHECKOUT),
    ],
    ids=["NOT-32", "NOT-31", "NOT-32-qualifier", "-(-32", "-(-31-nullable", "parens-32", "NOT(-32",
         "NOT-(-16", "(NOT-32"],
)
def test_32_levels_of_each_construct_run_and_match_the_right_runs(
    store: RecordStore, query: str, expected: set[int]
) -> None:
    assert numbers(store, query) == expected


def chain(depth: int, sets: dict[str, set[int]]) -> tuple[str, set[int]]:
    """`(a OR -(b (c OR -(d …))))`: AND, OR, NOT and parentheses alternating `depth` levels down."""
    query, expected = "checkout", sets["checkout"]
    for level in range(depth):
        term = TERMS[level % len(TERMS)]
        if level % 2:
            query, expected = f"({term} OR {query})", sets[term] | expected
        else:
            query, expected = f"-({term} {query})", ALL - (sets[term] & expected)
    return query, expected


def test_32_levels_mixing_and_or_not_and_parentheses_run(store: RecordStore, term_sets: dict[str, set[int]]) -> None:
    query, expected = chain(32, term_sets)
    assert query.count("(") == 32

    assert numbers(store, query) == expected


def ladder(depth: int, sets: dict[str, set[int]]) -> tuple[str, set[int]]:
    """Two deep branches at every level: the shape that costs SQLite's parser the most per level."""
    if depth == 0:
        return "-tag:ci", ALL - sets["tag:ci"]
    side, side_expected = chain(depth - 1, sets)
    rest, rest_expected = ladder(depth - 1, sets)
    if depth % 2:
        return f"({side} OR {rest})", side_expected | rest_expected
    return f"({side} {rest})", side_expected & rest_expected


def test_deep_branches_everywhere_still_run(store: RecordStore, term_sets: dict[str, set[int]]) -> None:
    depth = 1
    while len(ladder(depth + 1, term_sets)[0]) <= 2000:
        depth += 1
    query, expected = ladder(depth, term_sets)

    assert numbers(store, query) == expected
    exported = store.export(query, "csv").splitlines()[1:]  # export reads the same filter in batches
    assert len(exported) == len(expected)


def random_query(
    rnd: random.Random, sets: dict[str, set[int]], depth: int, budget: list[int]
) -> tuple[str, set[int]]:
    budget[0] -= 1
    if depth == 0 or budget[0] <= 0 or rnd.random() < 0.2:
        term = rnd.choice(TERMS)
        query, expected = term, sets[term]
    else:
        width = rnd.choice((2, 2, 3))
        parts = [random_query(rnd, sets, depth - 1 if i == 0 else rnd.randrange(depth), budget) for i in range(width)]
        rnd.shuffle(parts)
        if rnd.random() < 0.5:
            query = "(" + " OR ".join(q for q, _ in parts) + ")"
            expected = set().union(*(e for _, e in parts))
        else:
            query = "(" + rnd.choice((" ", " AND ")).join(q for q, _ in parts) + ")"
            expected = set(ALL).intersection(*(e for _, e in parts))
    return negations(rnd, query, expected, rnd.choice((0, 0, 1, 2)))


def test_random_queries_within_the_limits_match_set_algebra(
    store: RecordStore, term_sets: dict[str, set[int]]
) -> None:
    rnd = random.Random(20260131)
    checked = 0
    while checked < 150:
        query, expected = random_query(rnd, term_sets, rnd.randint(3, 34), [rnd.randint(10, 80)])
        if len(query) > 2000:
            continue
        try:
            found = numbers(store, query)
        except QuerySyntaxError as error:
            assert "nest deeper than 32 levels" in str(error)
            continue
        assert found == expected, query
        checked += 1


# -- the 33rd level is refused -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        (nested(33, "NOT ", ""), "NOT and - nest deeper than 32 levels", 129),
        (nested(33, "-(", ")"), "NOT and - nest deeper than 32 levels", 65),
        (nested(33, "(", ")"), "parentheses nest deeper than 32 levels", 33),
        (nested(33, "NOT (", ")"), "NOT and - nest deeper than 32 levels", 161),
        (nested(33, "(NOT ", ")"), "parentheses nest deeper than 32 levels", 161),
        ("NOT " + nested(16, "NOT -(", ")"), "NOT and - nest deeper than 32 levels", 4 + 15 * 6 + 5),
        ("(" + nested(32, "-(", ")") + ")", "parentheses nest deeper than 32 levels", 1 + 31 * 2 + 2),
        ("tag:ci " + nested(33, "NOT ", "", "(a OR b)"), "NOT and - nest deeper than 32 levels", 8 + 32 * 4),
    ],
    ids=["NOT-33", "-(-33", "parens-33", "NOT(-33", "(NOT-33", "mixed-negations-33", "mixed-parens-33",
         "after-a-term"],
)
def test_the_33rd_level_is_refused_with_a_sentence(store: RecordStore, query: str, message: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError, match=message) as caught:
        store.search(query)
    assert caught.value.column == column
    assert str(caught.value).splitlines()[-1].index("^") - 2 == column - 1


def test_negations_count_along_one_path_not_across_the_query(store: RecordStore) -> None:
    """Siblings do not add up: 32 on each side of an OR is 32 levels."""
    side = nested(32, "NOT ", "", "tag:ci")
    assert numbers(store, f"{side} OR {side.replace('tag:ci', 'caller:bob')}") == numbers(store, "tag:ci OR caller:bob")


def test_hostile_depth_never_reaches_sqlite_or_python_recursion(store: RecordStore) -> None:
    for query in (nested(490, "NOT ", ""), nested(280, "NOT -(", ")"), nested(600, "-(", ")"), nested(990, "(", ")")):
        assert len(query) <= 2000
        with pytest.raises(QuerySyntaxError, match="nest deeper than 32 levels"):  # not RecursionError, not sqlite3
            store.search(query)


# -- through the CLI ---------------------------------------------------------------------------------


def test_cli_runs_32_levels_and_exits_0(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for query in (nested(32, "NOT ", ""), nested(32, "-(", ")"), nested(32, "(", ")"), nested(16, "NOT -(", ")")):
        assert main(["runs", "search", "--format", "json", "--data-dir", str(data_dir), "--", query]) == 0, query
        assert '"total": 7' in capsys.readouterr().out


@pytest.mark.parametrize(
    "query", [nested(33, "NOT ", ""), nested(33, "-(", ")"), nested(33, "(", ")"), nested(18, "NOT -(", ")")]
)
def test_cli_refuses_33_levels_with_exit_2_and_no_traceback(
    data_dir: Path, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    assert main(["runs", "search", "--data-dir", str(data_dir), "--", query]) == 2

    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and f"nest deeper than {MAX_NESTING} levels" in captured.err
    assert "Traceback" not in captured.err + captured.out


# -- Unicode case folding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ['intent:"DÉPLOYER FACTURATION"', 'intent:"Déployer Facturation"', "intent:DÉPLOY*", "intent:*FACTURATION",
     'intent:"DE\u0301PLOYER FACTURATION"'],  # the last with a decomposed É (E + combining acute)
)
def test_qualifier_values_fold_case_beyond_ascii(store: RecordStore, query: str) -> None:
    assert numbers(store, query) == {24}


def unicode_record(n: int, **fields: object) -> ExecutionRecord:
    started = datetime(2026, 3, n, tzinfo=UTC)
    return ExecutionRecord.model_validate({
        "id": f"run-{int(started.timestamp() * 1000):013d}-{n:08x}", "started_at": started, "triggered_by": "cli",
        "caller": "alice", "intent": "x", "status": RunStatus.FAILED, **fields,
    })


def test_every_free_form_qualifier_folds_case(tmp_path: Path) -> None:
    with RecordStore(tmp_path) as store:
        store.save(unicode_record(1, intent="Straße sperren", caller="Zoë Ångström", triggered_by="mcp:Café",
                                  tags=["Équipe-Paiements", "ÉQUIPE-PAIEMENTS"], failed_step="vérifier:Pods"))
        store.save(unicode_record(2, intent="strasse", caller="zoe", tags=["equipe"]))
        for query in ('intent:"STRASSE SPERREN"', 'caller:"ZOË ÅNGSTRÖM"', "triggered_by:MCP:CAFÉ",
                      "tag:équipe-paiements", "tag:ÉQUIPE*", "step:VÉRIFIER:*"):
            assert [r.intent for r in store.search(query).items] == ["Straße sperren"], query
        assert store.search("tag:équipe-paiements").items[0].tags == ["Équipe-Paiements", "ÉQUIPE-PAIEMENTS"]
        assert [f.value for f in store.search("caller:zoë*").facets.intent] == ["Straße sperren"]


def test_a_version_1_database_is_migrated_and_folds_case(tmp_path: Path) -> None:
    """A store written before folding: the upgrade fills the folded columns from what is there."""
    db = sqlite3.connect(tmp_path / "records.db")
    for statement in _MIGRATIONS[0].split(";"):
        if statement.strip():
            db.execute(statement)
    record = make_record(24, SEED[24]).model_copy(update={"tags": ["Équipe", "équipe"], "caller": "Zoë"})
    seq = db.execute(
        "INSERT INTO runs (id, started_at, finished_at, status, intent, triggered_by, caller, purpose,"
        " duration_seconds, failed_step) VALUES (?, ?, NULL, 'succeeded', ?, 'cli', ?, 'operate', 33, 'Prüfen')"
        " RETURNING seq",
        (record.id, record.started_at.timestamp(), record.intent, record.caller),
    ).fetchone()[0]
    db.execute("INSERT INTO run_records (seq, record) VALUES (?, ?)", (seq, record.model_dump_json()))
    db.executemany("INSERT INTO run_tags (run, tag) VALUES (?, ?)", [(seq, "Équipe"), (seq, "équipe")])
    db.execute("INSERT INTO runs_fts (rowid, intent, output, logs, error) VALUES (?, ?, '', '', '')",
               (seq, record.intent))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()

    with RecordStore(tmp_path) as store:
        assert store._read("PRAGMA user_version")[0][0] == 5
        for query in ('intent:"DÉPLOYER FACTURATION"', "caller:ZOË", "tag:ÉQUIPE", "step:PRÜFEN", "déployer"):
            assert [r.id for r in store.search(query).items] == [record.id], query
        assert store._read("SELECT COUNT(*) FROM run_tags")[0][0] == 1  # the two spellings are one folded tag
