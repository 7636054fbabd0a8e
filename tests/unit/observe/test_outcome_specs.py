"""Outcome specs are data: shipped defaults per category, the operator's file replacing a category or
adding a pattern's own checks, refused with a sentence naming the file when wrong; the http check is a
plain GET by our code."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from operate_mcp.errors import ConfigError
from operate_mcp.observe.outcomes import CheckSpec, _http, load_specs


def test_the_defaults_check_updates_for_rollout_readiness_and_failing_pods(tmp_path):
    specs = load_specs(tmp_path)
    assert [c.check for c in specs.checks_for("update", [])] == ["rollout_complete", "pods_ready", "no_failing_pods"]
    assert specs.defaults.timeout == 300
    assert {i.reason: i.severity for i in specs.failure_indicators}["CrashLoopBackOff"] == "P1"
    assert specs.checks_for("delete", []) == []


def test_the_operators_file_replaces_a_category_and_adds_pattern_checks(tmp_path):
    (tmp_path / "outcome-specs.yaml").write_text(
        "categories:\n  update: [{check: http, url: 'http://web/healthz', status: 204, timeout: 60}]\n"
        "patterns:\n  blue-green: [{check: field_equals, resource: services, name: web, path: spec.selector.color,"
        " value: green}]\n"
    )
    specs = load_specs(tmp_path)
    [http] = specs.checks_for("update", ["other-pattern"])
    assert (http.check, http.status, http.timeout) == ("http", 204, 60)
    [field] = specs.checks_for("update", ["blue-green"])
    assert field.check == "field_equals" and field.value == "green"
    assert [c.check for c in specs.checks_for("scale", [])] == ["replicas_available", "no_failing_pods"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("categories: [", "is not valid YAML"),
        ("- a list", "must be a mapping"),
        ("categories:\n  update: [{check: run_shell, command: rm}]\n", "categories.update.0.check"),
        ("categories:\n  upgrade: []\n", "categories.upgrade"),
        ("defaults: {timeout: -1}\n", "defaults.timeout"),
    ],
)
def test_a_wrong_spec_file_is_refused_with_a_sentence_naming_it(tmp_path, text, says):
    (tmp_path / "outcome-specs.yaml").write_text(text)
    with pytest.raises(ConfigError, match=r"outcome-specs\.yaml") as raised:
        load_specs(tmp_path)
    assert says in str(raised.value)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server():
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_http_check_is_a_get_by_our_code_judged_on_its_status(health_server):
    assert _http(CheckSpec(check="http", url=f"{health_server}/healthz", status=200, timeout=5)) == (
        True, f"GET {health_server}/healthz: 200 (expected 200)"
    )
    ok, detail = _http(CheckSpec(check="http", url=f"{health_server}/ready", status=200, timeout=5))
    assert not ok and "503" in detail
    ok, detail = _http(CheckSpec(check="http", url="http://127.0.0.1:9/", status=200, timeout=1))
    assert not ok and "ConnectError" in detail
