"""Failure alerts: one grep-friendly line per failed execution, and an optional webhook that never blocks.

The line is logfmt (`ts=… id=… status=… intent="…" step="…" error="…"`): one line whatever the
input, secrets redacted, so `grep`, `tail -f` and log shippers all read it. The webhook runs in a
background thread with a bounded queue: a slow or dead receiver costs retries, never the caller's time.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from operate_mcp.records.models import FAILURE_STATUSES, ExecutionRecord
from operate_mcp.redact import redact_text

if TYPE_CHECKING:
    import httpx

ALERTS_FILE = Path("alerts") / "intent-failures.log"
VALUE_CAP_CHARS = 1_000

logger = logging.getLogger(__name__)


class FailureAlert(BaseModel):
    at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    request_id: str
    intent: str
    status: str = "failed"
    step: str | None = None
    error: str | None = None

    @classmethod
    def from_record(cls, record: ExecutionRecord) -> FailureAlert:
        return cls(
            at=record.finished_at or record.started_at,
            request_id=record.id,
            intent=record.intent,
            status=record.status.value,
            step=record.failed_step,
            error=record.error,
        )

    def redacted(self) -> FailureAlert:
        def clean(text: str | None) -> str | None:
            if text is None:
                return None
            text = redact_text(text)
            return text if len(text) <= VALUE_CAP_CHARS else text[: VALUE_CAP_CHARS - 1] + "…"

        return self.model_copy(
            update={
                "request_id": clean(self.request_id),
                "intent": clean(self.intent),
                "status": clean(self.status),
                "step": clean(self.step),
                "error": clean(self.error),
            }
        )


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_NEEDS_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f\u2028\u2029]')


def _escape(char: str) -> str:
    return _ESCAPES.get(char) or f"\\u{ord(char):04x}"


def logfmt_value(value: str) -> str:
    """A logfmt value: bare when it can be, else quoted with \\n, \\", \\\\ escapes: always one line."""
    escaped = _NEEDS_ESCAPE.sub(lambda m: _escape(m.group()), value)
    if value and escaped == value and not re.search(r"[\s=]", value):
        return value
    return f'"{escaped}"'


def format_line(alert: FailureAlert) -> str:
    a = alert.redacted()
    ts = a.at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    fields = [("ts", ts), ("id", a.request_id), ("status", a.status), ("intent", a.intent),
              ("step", a.step or "-"), ("error", a.error or "-")]
    return " ".join(f"{k}={logfmt_value(v)}" for k, v in fields) + "\n"


def _host(url: str) -> str:
    """Only scheme and host go into logs: webhook URLs often carry a token in the path or query."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}"


class FailureAlerts:
    """Append failure lines under `<data_dir>/alerts/` and, if configured, POST them to a webhook."""

    def __init__(
        self,
        data_dir: Path,
        webhook_url: str | None = None,
        *,
        queue_size: int = 100,
        max_attempts: int = 5,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.path = data_dir / ALERTS_FILE
        self.webhook_url = webhook_url
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.timeout_seconds = timeout_seconds
        self.dropped = 0
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=queue_size)
        self._file_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()

    def alert(
        self,
        failure: ExecutionRecord | FailureAlert | Mapping[str, Any],
        *,
        event: str = "intent-failure",
        details: Mapping[str, Any] | None = None,
    ) -> str:
        """Write the line now (fsynced), queue the webhook call, return the line written.

        `event` names the webhook payload's type (`operate-mcp.<event>`); `details`, already redacted by the
        caller, are added to the payload (an anomaly sends `event="anomaly"` and the anomaly itself).
        """
        if isinstance(failure, ExecutionRecord):
            alert = FailureAlert.from_record(failure)
        elif isinstance(failure, FailureAlert):
            alert = failure
        else:
            alert = FailureAlert.model_validate(dict(failure))
        line = format_line(alert)
        self._append(line)
        if self.webhook_url is not None:
            payload = {**(details or {}), **alert.redacted().model_dump(mode="json")}
            self._enqueue({"type": f"operate-mcp.{event}", **payload})
        return line

    def alert_if_failed(self, record: ExecutionRecord) -> bool:
        """Alert for failed, partial and interrupted runs; True when it did."""
        if record.status not in FAILURE_STATUSES:
            return False
        self.alert(record)
        return True

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = line.encode("utf-8")
        with self._file_lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)  # one write of one line: appends from several processes never interleave
                os.fsync(fd)
            finally:
                os.close(fd)

    # -- webhook -----------------------------------------------------------------------------------

    def _enqueue(self, payload: dict[str, Any]) -> None:
        self._start_worker()
        try:
            self._queue.put_nowait(payload)
        except queue.Full:
            self.dropped += 1
            logger.warning(
                "alert webhook queue is full (%d waiting for %s); dropped the alert for %s; it is still in %s",
                self._queue.qsize(), _host(self.webhook_url or ""), payload.get("request_id"), self.path,
            )

    def _start_worker(self) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="operate-mcp-alert-webhook", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        import httpx  # lazy: ~0.15 s to import (rich, pygments, click); only a configured webhook needs it

        with httpx.Client(timeout=self.timeout_seconds) as client:
            while True:
                payload = self._queue.get()
                try:
                    if payload is None:
                        return
                    self._deliver(client, payload)
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, payload: dict[str, Any]) -> None:
        import httpx  # lazy: see _run

        url = self.webhook_url or ""
        for attempt in range(1, self.max_attempts + 1):
            problem: str
            try:
                response = client.post(url, json=payload)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code not in (408, 429):
                    logger.warning("alert webhook %s refused the alert for %s (%s); not retrying",
                                   _host(url), payload.get("request_id"), problem)
                    return
            if attempt == self.max_attempts:
                logger.warning("alert webhook %s failed %d times for %s (last: %s); giving up",
                               _host(url), attempt, payload.get("request_id"), problem)
                return
            delay = min(self.backoff_seconds * 2 ** (attempt - 1), self.max_backoff_seconds)
            logger.info("alert webhook %s: %s; retry %d in %.1fs", _host(url), problem, attempt, delay)
            time.sleep(delay)

    def close(self, timeout: float = 10.0) -> None:
        """Wait up to `timeout` seconds for queued alerts (retries included), then leave the daemon thread be."""
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            return
        worker.join(timeout)
