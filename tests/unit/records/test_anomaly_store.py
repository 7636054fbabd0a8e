"""The anomaly store: a row in records.db and a YAML file per anomaly, queries, and P1/P2 to the failure alerts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from operate_mcp.model.observation import Anomaly
from operate_mcp.records.alerts import FailureAlerts
from operate_mcp.records.anomaly_store import ANOMALY_ID, AnomalyNotFound, AnomalyStore, anomaly_id
from operate_mcp.records.models import ExecutionRecord, RecordError, RunStatus, new_record_id
from operate_mcp.records.store import RecordStore

AT = datetime(2026, 3, 2, 23, 59, 30, tzinfo=UTC)


def anomaly(rule: str = "unexpected_restart", severity: str = "P1", *, at: datetime = AT, run: str | None = None,
            **fields: Any) -> Anomaly:
    run_id = run or new_record_id(at)
    target = fields.pop("target", "deployment/web")
    return Anomaly.model_validate({
        "id": anomaly_id(run_id, rule, target), "run_id": run_id, "rule": rule, "severity": severity,
        "detected_at": at, "category": "update", "namespace": "shop", "target": target,
        "expected": "no container restarts", "actual": "web-1 restarted 2 time(s)",
        "evidence": ["Warning BackOff Pod/web-1"], "suggested_action": "read the previous logs", **fields,
    })


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AnomalyStore]:
    with AnomalyStore(tmp_path, alerts=FailureAlerts(tmp_path)) as s:
        yield s


def test_each_anomaly_is_a_row_and_a_yaml_file_under_its_day(store: AnomalyStore, tmp_path: Path) -> None:
    a = anomaly()
    assert store.save(a) is True

    path = tmp_path / "anomalies" / "2026-03-02" / f"{a.id}.yaml"
    assert store.file_of(a) == path and (path.stat().st_mode & 0o777) == 0o600
    assert Anomaly.model_validate(yaml.safe_load(path.read_text())) == a
    assert path.read_text().startswith(f"# operate-mcp anomaly {a.id} (run {a.run_id})\n")
    assert store.get(a.id) == a
    assert not list(path.parent.glob(".*.tmp"))


def test_anomalies_survive_a_restart_and_share_records_db_with_the_run_store(tmp_path: Path) -> None:
    runs = RecordStore(tmp_path)  # either store may open the file first; each keeps its own schema
    with AnomalyStore(tmp_path) as anomalies:
        a = anomaly()
        anomalies.save(a)
    runs.save(ExecutionRecord(id=a.run_id, started_at=AT, triggered_by="cli", caller="alice", intent="deploy",
                              status=RunStatus.SUCCEEDED, anomalies=[a.id]))
    runs.close()

    with RecordStore(tmp_path) as runs, AnomalyStore(tmp_path) as anomalies:
        assert anomalies.get(runs.get(a.run_id).anomalies[0]) == a
        assert anomalies.path == runs.path == tmp_path / "records.db"


def test_ids_are_stable_so_detecting_a_run_again_updates_instead_of_repeating(
    store: AnomalyStore, tmp_path: Path
) -> None:
    run = new_record_id(AT)
    assert anomaly_id(run, "flaky", "deployment/web") == anomaly_id(run, "flaky", "deployment/web")
    assert anomaly_id(run, "flaky", "deployment/web") != anomaly_id(run, "flaky", "deployment/api")
    assert ANOMALY_ID.match(anomaly_id(run, "flaky", "deployment/web"))
    assert anomaly_id(run, "flaky", "x").split("-")[1] == run.split("-")[1]  # sorts with its run

    first = anomaly(run=run)
    again = anomaly(run=run, at=AT + timedelta(days=1), actual="web-1 restarted 3 time(s)")
    assert store.save(first) is True and store.save(again) is False

    stored = store.get(first.id)
    assert stored.actual == "web-1 restarted 3 time(s)" and stored.detected_at == AT  # first detection kept
    assert [p.name for p in (tmp_path / "anomalies").rglob("*.yaml")] == [f"{first.id}.yaml"]
    log = (tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()
    assert len(log) == 1  # alerted once


def test_queries_filter_by_time_category_severity_namespace_and_run(store: AnomalyStore) -> None:
    run = new_record_id(AT)
    p1 = anomaly("unexpected_restart", "P1", at=AT, run=run)
    p2 = anomaly("memory_spike", "P2", at=AT - timedelta(hours=1), run=run)
    p3 = anomaly("flaky", "P3", at=AT - timedelta(days=2), namespace="payments", category="scale")
    for a in (p1, p2, p3):
        store.save(a)

    assert store.query() == [p1, p2, p3]  # newest first
    assert store.query(min_severity="P2") == [p1, p2]  # P2 means P2 and worse
    assert store.query(min_severity="P1") == [p1]
    assert store.query(since=AT - timedelta(days=1)) == [p1, p2]
    assert store.query(until=AT - timedelta(days=1)) == [p3]
    assert store.query(category="scale") == [p3]
    assert store.query(namespace="PAYMENTS") == [p3]
    assert store.query(run_id=run) == store.for_run(run) == [p1, p2]
    assert store.query(rule="memory_spike") == [p2]
    assert store.query(limit=1) == [p1]
    with pytest.raises(RecordError, match="limit must be between 1 and 1000"):
        store.query(limit=0)


def test_an_unknown_id_says_how_to_find_one(store: AnomalyStore) -> None:
    with pytest.raises(AnomalyNotFound, match=r"no anomaly 'anom-1-x'.*operate-mcp anomalies"):
        store.get("anom-1-x")


def test_p1_and_p2_go_to_the_failure_alert_log_and_p3_does_not(store: AnomalyStore, tmp_path: Path) -> None:
    p1 = anomaly("unexpected_restart", "P1")
    store.save(p1, intent="deploy web v2")
    store.save(anomaly("memory_spike", "P2", actual="deployment/web: 40% -> 70%"))
    store.save(anomaly("flaky", "P3"))

    lines = (tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()
    assert len(lines) == 2
    assert lines[0] == (
        f'ts=2026-03-02T23:59:30.000Z id={p1.run_id} status=anomaly-P1 intent="deploy web v2" '
        'step=unexpected_restart error="expected no container restarts; actual web-1 restarted 2 time(s)"'
    )
    assert "status=anomaly-P2" in lines[1] and 'intent="update deployment/web"' in lines[1]


class Receiver:
    """A webhook receiver on 127.0.0.1 that keeps what it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.got = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.got.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_webhook_gets_the_anomaly_itself_with_secrets_masked(tmp_path: Path) -> None:
    receiver = Receiver()
    alerts = FailureAlerts(tmp_path, receiver.url)
    try:
        with AnomalyStore(tmp_path, alerts=alerts) as store:
            a = anomaly("new_error_pattern", "P2", evidence=["db: login failed password=hunter22"])
            store.save(a)
            assert receiver.got.wait(10)
    finally:
        alerts.close()
        receiver.close()

    body = receiver.bodies[0]
    assert body["type"] == "operate-mcp.anomaly" and body["status"] == "anomaly-P2"
    assert body["request_id"] == a.run_id and body["step"] == "new_error_pattern"
    assert body["anomaly"]["id"] == a.id and body["anomaly"]["suggested_action"] == "read the previous logs"
    assert "hunter22" not in json.dumps(body)


def test_baselines_are_kept_and_bounded(store: AnomalyStore, monkeypatch: pytest.MonkeyPatch) -> None:
    from operate_mcp.records import anomaly_store
    from operate_mcp.records.anomaly_store import BaselineRow

    monkeypatch.setattr(anomaly_store, "MAX_BASELINE_KEYS", 3)
    for n in range(5):
        store.save_baselines([BaselineRow(category="update", step=f"step {n}", count=1, ewma=1.0, recent=[1.0],
                                          updated_at=AT + timedelta(seconds=n))])

    assert [r.step for r in store.baselines("update")] == ["step 2", "step 3", "step 4"]  # the stalest forgotten
    assert store.baseline("update", "step 4") is not None and store.baseline("update", "step 0") is None
