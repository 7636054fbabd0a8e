"""Failure alerts: one grep-able line per failure, secrets masked, a webhook that retries and never blocks."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from operate_mcp.records.alerts import FailureAlert, FailureAlerts, logfmt_value
from operate_mcp.records.models import ExecutionRecord, RunStatus

AT = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def failed_record(n: int = 1, **fields: object) -> ExecutionRecord:
    return ExecutionRecord.model_validate({
        "id": f"run-1770091506789-{n:08x}",
        "started_at": AT,
        "finished_at": AT,
        "triggered_by": "cli",
        "caller": "alice",
        "intent": "deploy checkout v3",
        "status": RunStatus.FAILED,
        "failed_step": "kubectl rollout status deployment/checkout -n shop",
        "error": "exit 1: error: timed out waiting for the condition",
        **fields,
    })


class Receiver:
    """A webhook receiver on 127.0.0.1: answers with the scripted status codes, then 200; can hang."""

    def __init__(self, statuses: list[int] | None = None, hang_seconds: float = 0.0) -> None:
        self.statuses = list(statuses or [])
        self.hang_seconds = hang_seconds
        self.calls: list[tuple[float, dict[str, object]]] = []
        self.delivered = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.calls.append((time.monotonic(), body))
                if receiver.hang_seconds:
                    time.sleep(receiver.hang_seconds)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if status == 200:
                    receiver.delivered.set()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret-token-123"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator[type[Receiver]]:
    made: list[Receiver] = []

    class Tracked(Receiver):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            made.append(self)

    yield Tracked
    for r in made:
        r.close()


def test_each_failure_appends_one_line_with_id_intent_step_and_error(tmp_path: Path) -> None:
    alerts = FailureAlerts(tmp_path)

    alerts.alert(failed_record(1))
    alerts.alert(failed_record(2, intent="scale api", failed_step=None, error=None, status=RunStatus.PARTIAL))

    lines = (tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()
    assert lines == [
        'ts=2026-02-03T04:05:06.789Z id=run-1770091506789-00000001 status=failed intent="deploy checkout v3" '
        'step="kubectl rollout status deployment/checkout -n shop" '
        'error="exit 1: error: timed out waiting for the condition"',
        'ts=2026-02-03T04:05:06.789Z id=run-1770091506789-00000002 status=partial intent="scale api" step=- error=-',
    ]


def test_secrets_are_masked_and_newlines_cannot_forge_a_second_line(tmp_path: Path) -> None:
    alerts = FailureAlerts(tmp_path)
    line = alerts.alert({
        "at": AT, "request_id": "req-7", "intent": "rotate\nts=2026 id=forged status=ok",
        "error": "auth failed: password=hunter22 Authorization: Bearer abcdefghijklmnop\r\n\ttrailing",
    })

    written = (tmp_path / "alerts" / "intent-failures.log").read_text()
    assert written == line and written.count("\n") == 1
    assert "hunter22" not in written and "abcdefghijklmnop" not in written
    assert 'intent="rotate\\nts=2026 id=forged status=ok"' in written
    assert "[REDACTED]" in written and "\\r\\n\\ttrailing" in written


def test_logfmt_values_are_bare_only_when_safe() -> None:
    assert logfmt_value("failed") == "failed"
    assert logfmt_value("") == '""'
    assert logfmt_value("a=b") == '"a=b"'
    assert logfmt_value('say "hi"\\') == '"say \\"hi\\"\\\\"'
    assert logfmt_value("bell\x07") == '"bell\\u0007"'


def test_the_log_is_private_and_only_failures_alert_when_asked(tmp_path: Path) -> None:
    alerts = FailureAlerts(tmp_path)

    assert alerts.alert_if_failed(failed_record(1, status=RunStatus.SUCCEEDED)) is False
    assert alerts.alert_if_failed(failed_record(2, status=RunStatus.INTERRUPTED)) is True

    log = tmp_path / "alerts" / "intent-failures.log"
    assert len(log.read_text().splitlines()) == 1 and (log.stat().st_mode & 0o777) == 0o600


def test_concurrent_alerts_never_interleave(tmp_path: Path) -> None:
    alerts = FailureAlerts(tmp_path)
    threads = [threading.Thread(target=lambda n=n: [alerts.alert(failed_record(n * 100 + i, error="x" * 3000))
                                                    for i in range(20)]) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    lines = (tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()
    assert len(lines) == 80 and all(line.startswith("ts=") and line.endswith("x…") for line in lines)


def test_webhook_gets_the_redacted_alert_as_json(tmp_path: Path, receiver_factory: type[Receiver]) -> None:
    receiver = receiver_factory()
    alerts = FailureAlerts(tmp_path, receiver.url)

    alerts.alert(failed_record(1, error="token=s3cr3t-value failed"))

    assert receiver.delivered.wait(5)
    body = receiver.calls[0][1]
    assert body["type"] == "operate-mcp.intent-failure" and body["request_id"] == "run-1770091506789-00000001"
    assert body["intent"] == "deploy checkout v3" and body["step"].startswith("kubectl rollout status")
    assert "s3cr3t" not in json.dumps(body)
    alerts.close()


def test_webhook_retries_with_exponential_backoff_until_it_succeeds(
    tmp_path: Path, receiver_factory: type[Receiver]
) -> None:
    receiver = receiver_factory(statuses=[500, 503])
    alerts = FailureAlerts(tmp_path, receiver.url, backoff_seconds=0.2)

    alerts.alert(failed_record(1))

    assert receiver.delivered.wait(5)
    times = [t for t, _ in receiver.calls]
    assert len(times) == 3
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert 0.2 <= first_gap < 0.4 + 0.5  # backoff 0.2 s (slack for a busy machine)
    assert 0.4 <= second_gap < 0.4 + 0.5  # then doubled
    alerts.close()


def test_webhook_gives_up_after_max_attempts_and_on_client_errors(
    tmp_path: Path, receiver_factory: type[Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    down = receiver_factory(statuses=[500, 500, 500, 500])
    alerts = FailureAlerts(tmp_path, down.url, backoff_seconds=0.01, max_attempts=3)
    with caplog.at_level(logging.WARNING, logger="operate_mcp.records.alerts"):
        alerts.alert(failed_record(1))
        alerts.close()
    assert len(down.calls) == 3
    assert "failed 3 times" in caplog.text and "secret-token-123" not in caplog.text

    refused = receiver_factory(statuses=[404])
    alerts = FailureAlerts(tmp_path, refused.url, backoff_seconds=0.01)
    with caplog.at_level(logging.WARNING, logger="operate_mcp.records.alerts"):
        alerts.alert(failed_record(2))
        alerts.close()
    assert len(refused.calls) == 1 and "not retrying" in caplog.text


def test_a_hanging_webhook_never_blocks_the_caller(tmp_path: Path, receiver_factory: type[Receiver]) -> None:
    receiver = receiver_factory(hang_seconds=3.0)
    alerts = FailureAlerts(tmp_path, receiver.url, timeout_seconds=10.0)

    started = time.monotonic()
    for n in range(5):
        alerts.alert(failed_record(n))
    elapsed = time.monotonic() - started

    assert elapsed < 0.5
    assert len((tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()) == 5


def test_a_full_queue_drops_with_a_log_line_but_keeps_the_file_line(
    tmp_path: Path, receiver_factory: type[Receiver], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = receiver_factory(hang_seconds=2.0)
    alerts = FailureAlerts(tmp_path, receiver.url, queue_size=1, timeout_seconds=10.0)

    with caplog.at_level(logging.WARNING, logger="operate_mcp.records.alerts"):
        alerts.alert(failed_record(1))
        deadline = time.monotonic() + 2
        while not receiver.calls and time.monotonic() < deadline:  # the worker holds alert 1 in flight
            time.sleep(0.01)
        alerts.alert(failed_record(2))  # waits in the queue
        alerts.alert(failed_record(3))  # no room: dropped

    assert alerts.dropped == 1
    assert "dropped the alert for run-1770091506789-00000003" in caplog.text
    assert "secret-token-123" not in caplog.text
    assert len((tmp_path / "alerts" / "intent-failures.log").read_text().splitlines()) == 3


def test_failure_alert_from_a_record_uses_its_finish_time() -> None:
    alert = FailureAlert.from_record(failed_record(1))

    assert alert.at == AT and alert.status == "failed" and alert.step is not None
