"""`metrics --query`: success rates per category over the runs a search query picks, failing steps by verb and
kind, today as the default window, and daily aggregates that answer for days the retention has archived.

Every figure below is worked out by hand from SEED."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from mcp import Client

from operate_mcp.config import Settings
from operate_mcp.records.cli import add_records_parsers
from operate_mcp.records.metrics import Metrics, compute_metrics
from operate_mcp.records.models import CommandRecord, ExecutionRecord, RunStatus
from operate_mcp.records.query import QuerySyntaxError
from operate_mcp.records.store import RecordStore, read_archive
from operate_mcp.server import create_server

S, F, P, INT, RB, R = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.PARTIAL, RunStatus.INTERRUPTED,
                     RunStatus.ROLLED_BACK, RunStatus.RUNNING)
DAY = date(2026, 5, 4)


@dataclass
class Seed:
    category: str
    status: RunStatus
    namespaces: list[str]
    duration: float
    failed: str | None = None  # the failing command line, or a check:... step
    ran: bool = True  # False: the executor stopped before the failing command ran (no command record)
    day: date = DAY


SEED: dict[str, Seed] = {
    "u1": Seed("update", S, ["shop"], 10),
    "u2": Seed("update", S, ["shop"], 20),
    "u3": Seed("update", F, ["shop"], 30, "kubectl set image deployment/checkout app=checkout:v3 -n shop"),
    "u4": Seed("update", P, ["shop"], 40, "kubectl set image deployment/cart app=cart:v9 -n shop"),
    "u5": Seed("update", S, ["payments"], 50),
    "u6": Seed("update", INT, ["payments"], 60, "kubectl apply -f -", ran=False),
    "u7": Seed("update", S, ["shop", "payments"], 70),
    "u8": Seed("update", F, ["shop"], 80, "check:rollout"),
    "u9": Seed("update", R, ["shop"], 0),
    "u10": Seed("update", F, ["shop"], 999, "check:rollout", day=DAY - timedelta(days=1)),  # the day before
    "u11": Seed("update", S, ["shop"], 25),
    "s1": Seed("scale", S, ["shop"], 5),
    "s2": Seed("scale", F, ["payments"], 6, "kubectl scale deployment/api --replicas=9 -n payments"),
    "s3": Seed("scale", S, ["shop"], 7),
    "s4": Seed("scale", F, ["shop"], 8, "kubectl scale statefulset/db --replicas=3 -n shop"),
    "r1": Seed("rollback", RB, ["shop"], 12),
    "r2": Seed("rollback", F, ["shop"], 14, "kubectl rollout undo deployment/checkout -n shop"),
    "t1": Seed("restart", S, ["payments"], 3),
    "t2": Seed("restart", S, ["payments"], 4),
    "d1": Seed("delete", F, ["shop"], 9, "kubectl delete pod/web-1 -n shop"),
    "a1": Seed("autoscale", S, ["shop"], 11),
    "o1": Seed("other", S, [], 2),
}


def make(name: str, at: datetime | None = None) -> ExecutionRecord:
    seed = SEED[name]
    n = list(SEED).index(name) + 1
    started = at or datetime(seed.day.year, seed.day.month, seed.day.day, tzinfo=UTC) + timedelta(minutes=10 * n)
    commands = []
    if seed.failed and seed.ran and not seed.failed.startswith("check:"):
        commands = [CommandRecord(index=1, argv=seed.failed.split(), exit_code=1, duration_seconds=1.0)]
    return ExecutionRecord(
        id=f"run-{int(started.timestamp() * 1000):013d}-{n:08x}",
        started_at=started,
        finished_at=None if seed.status is R else started + timedelta(seconds=seed.duration),
        triggered_by="cli",
        caller="alice",
        intent=f"{seed.category} {name}",
        purpose="rollback" if seed.category == "rollback" else "operate",
        category=seed.category,  # type: ignore[arg-type]
        status=seed.status,
        duration_seconds=seed.duration,
        namespaces=seed.namespaces,
        commands=commands,
        failed_step=seed.failed,
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RecordStore:
    s = RecordStore(tmp_path_factory.mktemp("metrics-query"))
    s.save_many(make(name) for name in SEED)
    return s


def on_the_day(store: RecordStore, query: str = "") -> Metrics:
    return compute_metrics(store, start=DAY, end=DAY, query=query)


def test_the_seed_has_more_than_twenty_runs_of_every_kind() -> None:
    assert len(SEED) >= 20
    assert {s.category for s in SEED.values()} >= {"update", "scale", "rollback", "restart", "delete", "autoscale"}
    assert {s.status for s in SEED.values()} == {S, F, P, INT, RB, R}


def test_the_update_success_rate_matches_the_hand_computed_one(store: RecordStore) -> None:
    m = on_the_day(store, "category:update")

    # u1..u9 and u11 (u10 is the day before): succeeded u1 u2 u5 u7 u11 = 5; failed u3 u8 + partial u4 +
    # interrupted u6 = 4; u9 is running
    assert (m.total, m.succeeded, m.failed, m.rolled_back) == (10, 5, 4, 0)
    assert m.by_status == {"running": 1, "succeeded": 5, "failed": 2, "partial": 1, "interrupted": 1}
    assert m.success_rate == 5 / 9
    # finished: 10 20 30 40 50 60 70 80 25 -> 385 over 9; nearest rank ceil(8.55) = 9th smallest = 80
    assert m.avg_duration_seconds == pytest.approx(385 / 9)
    assert m.p95_duration_seconds == 80
    assert m.query == "category:update" and m.source == "records" and m.notes == []
    assert [(c.category, c.total, c.success_rate) for c in m.by_category] == [("update", 10, 5 / 9)]


def test_the_query_narrows_to_a_namespace(store: RecordStore) -> None:
    m = on_the_day(store, "category:update namespace:shop")

    # u1 u2 u3 u4 u7 u8 u9 u11: succeeded u1 u2 u7 u11, failed u3 u4 u8, u9 running
    assert (m.total, m.succeeded, m.failed) == (8, 4, 3)
    assert m.success_rate == 4 / 7


def test_every_category_gets_its_own_success_rate(store: RecordStore) -> None:
    m = on_the_day(store)

    # 21 runs on the day: 11 succeeded, 8 failed (u3 u4 u6 u8 s2 s4 r2 d1), r1 rolled back, u9 running
    assert (m.total, m.succeeded, m.failed, m.rolled_back) == (21, 11, 8, 1)
    assert m.success_rate == 11 / 19
    assert [(c.category, c.total, c.succeeded, c.failed, c.rolled_back, c.success_rate) for c in m.by_category] == [
        ("update", 10, 5, 4, 0, 5 / 9),
        ("scale", 4, 2, 2, 0, 0.5),
        ("restart", 2, 2, 0, 0, 1.0),
        ("rollback", 2, 0, 1, 1, 0.0),  # the clean rollback r1 counts in neither
        ("autoscale", 1, 1, 0, 0, 1.0),
        ("delete", 1, 0, 1, 0, 0.0),
        ("other", 1, 1, 0, 0, 1.0),
    ]


def test_failing_steps_are_grouped_by_verb_and_kind_not_the_command_line(store: RecordStore) -> None:
    steps = on_the_day(store).failing_steps

    # u3 and u4 set images on different deployments: one group. u6 never ran its command: read from the step.
    assert [(s.step, s.failures) for s in steps] == [
        ("set image deployment", 2), ("apply", 1), ("check:rollout", 1), ("delete pod", 1),
        ("rollout undo deployment", 1), ("scale deployment", 1), ("scale statefulset", 1),
    ]
    assert steps[0].example == "kubectl set image deployment/cart app=cart:v9 -n shop"  # the latest of the two
    assert [(s.step, s.failures) for s in on_the_day(store, "category:scale").failing_steps] == [
        ("scale deployment", 1), ("scale statefulset", 1)
    ]


def test_a_query_with_free_text_and_other_qualifiers_works_too(store: RecordStore) -> None:
    m = on_the_day(store, "status:failed -namespace:payments")

    # status failed (not partial or interrupted) outside payments: u3 u8 s4 r2 d1; s2 is in payments
    assert (m.total, m.failed) == (5, 5)
    assert {c.category for c in m.by_category} == {"update", "scale", "rollback", "delete"}


def test_a_bad_query_is_a_query_error(store: RecordStore) -> None:
    with pytest.raises(QuerySyntaxError, match="category: unknown category 'updte'; use one of update, scale"):
        on_the_day(store, "category:updte")


# -- daily aggregates: kept beyond retention -------------------------------------------------------------

NOW = datetime(2026, 6, 20, 9, 0, tzinfo=UTC)  # 30 days' retention: the cutoff is 2026-05-21


@pytest.fixture
def pruned(tmp_path: Path) -> RecordStore:
    s = RecordStore(tmp_path)
    s.save_many(make(name) for name in SEED)
    result = s.apply_retention(30, now=NOW)
    assert result.deleted == len(SEED) and s.count() == 0
    return s


def test_metrics_for_a_pruned_day_come_from_the_daily_aggregates(pruned: RecordStore) -> None:
    m = on_the_day(pruned, "category:update")

    assert m.source == "daily aggregates" and "archived by retention" in m.notes[0]
    assert (m.total, m.succeeded, m.failed, m.rolled_back) == (10, 5, 4, 0)
    assert m.by_status == {"running": 1, "succeeded": 5, "failed": 2, "partial": 1, "interrupted": 1}
    assert m.success_rate == 5 / 9
    assert m.avg_duration_seconds == pytest.approx(385 / 9)
    assert m.p95_duration_seconds == 90  # 80 s is in the (60, 90] bucket: its upper bound
    assert [(s.step, s.failures) for s in m.failing_steps] == [
        ("set image deployment", 2), ("apply", 1), ("check:rollout", 1)
    ]
    assert (m.start, m.end) == (datetime(2026, 5, 4, tzinfo=UTC), datetime(2026, 5, 5, tzinfo=UTC))


@pytest.mark.parametrize("query", ["", "category:update namespace:shop", "namespace:payments", "category:scale",
                                   "status:failed", "Category:ROLLBACK status:rolled_back"])
def test_the_aggregates_give_the_same_counts_as_the_records_did(
    store: RecordStore, pruned: RecordStore, query: str
) -> None:
    before, after = on_the_day(store, query), on_the_day(pruned, query)

    assert after.source == "daily aggregates"
    for name in ("total", "succeeded", "failed", "rolled_back", "by_status", "success_rate"):
        assert getattr(after, name) == getattr(before, name), name
    assert after.avg_duration_seconds == pytest.approx(before.avg_duration_seconds)
    assert [(c.category, c.total, c.success_rate) for c in after.by_category] == [
        (c.category, c.total, c.success_rate) for c in before.by_category
    ]
    assert [(s.step, s.failures) for s in after.failing_steps] == [(s.step, s.failures) for s in before.failing_steps]


def test_a_query_the_aggregates_cannot_answer_says_what_is_missing(pruned: RecordStore) -> None:
    m = on_the_day(pruned, "category:update intent:update*")

    assert m.source == "records" and m.total == 0
    assert "were archived by retention and are not counted" in m.notes[0]


def test_days_still_in_the_records_are_answered_from_the_records(pruned: RecordStore) -> None:
    pruned.save(make("u1", at=datetime(2026, 6, 20, 8, tzinfo=UTC)))

    m = compute_metrics(pruned, start=date(2026, 6, 20), end=date(2026, 6, 20), query="category:update")
    assert m.source == "records" and (m.total, m.succeeded) == (1, 1)
    # a window reaching into the archived days takes everything from the aggregates, the new run included
    m = compute_metrics(pruned, start=date(2026, 5, 1), end=date(2026, 6, 20), query="category:update")
    assert m.source == "daily aggregates" and (m.total, m.succeeded) == (12, 6)


def test_saving_a_run_again_moves_its_count_instead_of_adding_one(tmp_path: Path) -> None:
    with RecordStore(tmp_path) as s:
        running = make("u9")
        s.save(running)
        s.save(running.model_copy(update={"status": F, "finished_at": running.started_at + timedelta(seconds=5),
                                          "duration_seconds": 5.0, "failed_step": "check:rollout",
                                          "namespaces": ["payments"]}))
        s.apply_retention(30, now=NOW)

        m = on_the_day(s)
        assert (m.source, m.total, m.failed, m.by_status) == ("daily aggregates", 1, 1, {"failed": 1})
        assert on_the_day(s, "namespace:shop").total == 0 and on_the_day(s, "namespace:payments").total == 1
        assert [(x.step, x.failures) for x in m.failing_steps] == [("check:rollout", 1)]
        assert s._read("SELECT COUNT(*) FROM daily WHERE runs <= 0")[0][0] == 0


def test_saving_a_pruned_run_again_moves_its_count_instead_of_adding_one(store: RecordStore, tmp_path: Path) -> None:
    """Re-importing the archive (or a late update of an archived run) must not count a run twice: the
    aggregates kept its share when retention deleted it."""
    before = on_the_day(store, "")
    with RecordStore(tmp_path / "re") as s:
        s.save_many(make(name) for name in SEED)
        s.apply_retention(30, now=NOW)
        files = sorted((tmp_path / "re" / "archive").glob("runs-*.jsonl.gz"))
        archived = [r for path in files for r in read_archive(path)]
        assert len(archived) == len(SEED)
        s.save_many(archived)  # the whole archive imported back
        again = on_the_day(s, "")
        assert (again.total, again.by_status) == (before.total, before.by_status)
        first = archived[0]
        s.save(first.model_copy(update={"status": F, "failed_step": "check:rollout"}))  # a late update
        updated = on_the_day(s, "")
        assert updated.total == before.total
        assert updated.by_status.get("failed", 0) == before.by_status.get("failed", 0) + (first.status != F)


# -- the CLI and the MCP tool ----------------------------------------------------------------------------


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="operate-mcp")
    add_records_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


@pytest.fixture
def today_dir(tmp_path: Path) -> Path:
    """u1 (succeeded) and u3 (failed) earlier today, u2 (succeeded) yesterday."""
    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    with RecordStore(tmp_path) as s:
        s.save(make("u1", at=midnight))
        s.save(make("u3", at=midnight + timedelta(seconds=1)))
        s.save(make("u2", at=midnight - timedelta(hours=1)))
        s.save(make("s1", at=midnight))
    return tmp_path


def test_cli_metrics_query_counts_today_by_default(today_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("metrics", "--query", "category:update", "--format", "json", "--data-dir", str(today_dir)) == 0
    m = json.loads(capsys.readouterr().out)

    today = datetime.now(UTC).date()
    assert m["start"].startswith(today.isoformat()) and m["query"] == "category:update"
    assert (m["total"], m["succeeded"], m["failed"], m["success_rate"]) == (2, 1, 1, 0.5)
    assert m["failing_steps"][0]["step"] == "set image deployment" and m["source"] == "records"

    assert run("metrics", "-q", "category:update", "--data-dir", str(today_dir)) == 0
    out = capsys.readouterr().out
    assert f"executions {today} .. {today}  matching category:update" in out
    assert "success rate 50.0%" in out and "set image deployment" in out


def test_cli_metrics_says_when_it_answers_from_the_aggregates(
    pruned: RecordStore, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(pruned.data_dir)
    assert run("metrics", "--query", "category:update", "--from", "2026-05-04", "--to", "2026-05-04",
               "--data-dir", data_dir) == 0
    out = capsys.readouterr().out
    assert "source: daily aggregates" in out and "success rate 55.6%" in out
    assert run("metrics", "--query", "category:nope", "--data-dir", data_dir) == 2
    assert "unknown category 'nope'" in capsys.readouterr().err


async def test_the_mcp_metrics_tool_takes_a_query_and_defaults_to_today(today_dir: Path, tmp_path: Path) -> None:
    settings = Settings(data_dir=today_dir, approvers_dir=tmp_path / "approvers",
                        approval_key_file=tmp_path / "approval.key", knowledge_enabled=False)
    async with Client(create_server(settings)) as client:
        today = (await client.call_tool("metrics", {"query": "category:update"})).structured_content
        both_days = (await client.call_tool("metrics", {
            "query": "category:update", "start": (datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
            "end": datetime.now(UTC).date().isoformat(),
        })).structured_content
    assert today is not None and both_days is not None
    assert (today["total"], today["success_rate"], today["source"]) == (2, 0.5, "records")
    assert both_days["total"] == 3  # the end date is included, as its description says
