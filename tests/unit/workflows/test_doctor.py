"""`operate-mcp doctor` on broken setups: every problem is a row naming what is wrong and its fix, and only
a failing row makes the exit code 1.

Real kubectl against a missing kubeconfig or a refused port, the real Anthropic SDK against the local
Messages API server (tests/support/messages_api.py), real directories.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from operate_mcp.cli import main
from operate_mcp.config import Settings
from operate_mcp.workflows.doctor import DoctorReport, Status, run_doctor
from support.messages_api import MessagesAPI, recorded, serve


@pytest.fixture(autouse=True)
def no_inherited_key(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "OPERATE_MCP_ANTHROPIC_API_KEY", "OPERATE_MCP_CONFIG", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def closed_port() -> Iterator[int]:
    """Bound, never listening: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: dev
  cluster: {{server: "{server}", insecure-skip-tls-verify: true}}
contexts:
- name: kind-dev
  context: {{cluster: dev, user: dev, namespace: shop}}
current-context: kind-dev
users:
- name: dev
  user: {{token: not-a-real-token}}
"""
    )
    return path


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    overrides.setdefault("data_dir", tmp_path / "data")
    overrides.setdefault("kubeconfig", tmp_path / "missing-kubeconfig")
    return Settings(**overrides)


def row(report: DoctorReport, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


async def test_a_missing_kubeconfig_fails_and_the_cluster_rows_say_they_were_not_checked(tmp_path):
    missing = tmp_path / "nowhere" / "kubeconfig"
    report = await run_doctor(settings(tmp_path, kubeconfig=missing, knowledge_enabled=False))
    kube = row(report, "kubeconfig")
    assert kube.status is Status.FAIL and f"the kubeconfig {missing} does not exist" in kube.detail
    assert "OPERATE_MCP_KUBECONFIG" in kube.fix
    for name in ("cluster", "identity"):
        assert row(report, name).status is Status.WARN and "not checked" in row(report, name).detail
    assert row(report, "kubectl").status is Status.OK
    assert not report.ok


async def test_an_unreachable_cluster_is_named_with_its_server(tmp_path, closed_port):
    config = kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port}")
    report = await run_doctor(settings(tmp_path, kubeconfig=config, knowledge_enabled=False))
    assert row(report, "kubeconfig").status is Status.OK
    cluster = row(report, "cluster")
    assert cluster.status is Status.FAIL
    assert f"https://127.0.0.1:{closed_port}" in cluster.detail and "connection refused" in cluster.detail
    assert cluster.fix.startswith("start the cluster")
    assert "not checked" in row(report, "identity").detail
    assert not report.ok


async def test_no_api_key_is_a_warning_with_the_fix_and_no_request_is_made(tmp_path):
    api = MessagesAPI([recorded("final_no_change")])
    with serve(api) as url:
        report = await run_doctor(settings(tmp_path, anthropic_base_url=url, knowledge_enabled=False))
    key = row(report, "model key")
    assert key.status is Status.WARN and "no Anthropic API key" in key.detail
    assert "ANTHROPIC_API_KEY" in key.fix
    assert row(report, "model").status is Status.WARN
    assert api.requests == []


async def test_the_model_is_reached_with_one_one_token_request(tmp_path):
    api = MessagesAPI([recorded("final_no_change")])
    with serve(api) as url:
        report = await run_doctor(
            settings(tmp_path, anthropic_base_url=url, anthropic_api_key="sk-test", knowledge_enabled=False)
        )
    assert row(report, "model key").status is Status.OK
    model = row(report, "model")
    assert model.status is Status.OK and url in model.detail and "claude-sonnet-5" in model.detail
    assert len(api.requests) == 1
    assert api.requests[0]["max_tokens"] == 1 and api.requests[0]["model"] == "claude-sonnet-5"
    assert api.headers[0]["x-api-key"] == "sk-test"


class RejectingAPI(MessagesAPI):
    """The Messages API answering every request as for a revoked key."""

    def handle(self, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        self.requests.append(body)
        return 401, {"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}


async def test_a_rejected_key_fails_the_model_row(tmp_path):
    api = RejectingAPI([])
    with serve(api) as url:
        report = await run_doctor(
            settings(tmp_path, anthropic_base_url=url, anthropic_api_key="sk-revoked", knowledge_enabled=False)
        )
    model = row(report, "model")
    assert model.status is Status.FAIL and "rejected the API key (401)" in model.detail
    assert "ANTHROPIC_API_KEY" in model.fix
    assert len(api.requests) == 1  # a 401 is not retried


async def test_an_unreachable_model_endpoint_fails(tmp_path, closed_port):
    report = await run_doctor(
        settings(
            tmp_path,
            anthropic_base_url=f"http://127.0.0.1:{closed_port}",
            anthropic_api_key="sk-test",
            knowledge_enabled=False,
        )
    )
    model = row(report, "model")
    assert model.status is Status.FAIL and model.detail.startswith(f"cannot reach http://127.0.0.1:{closed_port}")


async def test_a_data_dir_that_is_a_file_fails(tmp_path):
    """Unwritable as any user, root included (these tests may run as root, where a 0500 mode stops nothing)."""
    data = tmp_path / "data"
    data.write_text("not a directory")
    report = await run_doctor(settings(tmp_path, data_dir=data))
    check = row(report, "data dir")
    assert check.status is Status.FAIL and check.detail == f"{data} exists but is not a directory"
    assert "OPERATE_MCP_DATA_DIR" in check.fix
    assert row(report, "kubectl").status is Status.FAIL  # its private cache lives in the data dir
    assert row(report, "qdrant").status is Status.WARN
    assert not report.ok


async def test_a_data_dir_that_cannot_be_created_fails(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    report = await run_doctor(settings(tmp_path, data_dir=blocker / "data", knowledge_enabled=False))
    check = row(report, "data dir")
    assert check.status is Status.FAIL and "does not exist and cannot be created" in check.detail
    assert "mkdir -m 700" in check.fix


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0500 directory; the file cases above cover root")
async def test_a_read_only_data_dir_fails(tmp_path):
    data = tmp_path / "data"
    data.mkdir(mode=0o500)
    report = await run_doctor(settings(tmp_path, data_dir=data, knowledge_enabled=False))
    assert row(report, "data dir").status is Status.FAIL and "is not writable" in row(report, "data dir").detail


async def test_a_data_dir_others_can_read_is_a_warning_naming_chmod(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)
    report = await run_doctor(settings(tmp_path, data_dir=data, knowledge_enabled=False))
    check = row(report, "data dir")
    assert check.status is Status.WARN and "mode 0755" in check.detail and check.fix == f"`chmod 700 {data}`"


async def test_a_missing_data_dir_is_created_private(tmp_path):
    data = tmp_path / "deep" / "data"
    report = await run_doctor(settings(tmp_path, data_dir=data, knowledge_enabled=False))
    assert row(report, "data dir").status is Status.OK
    assert data.stat().st_mode & 0o777 == 0o700


async def test_knowledge_rows_check_the_extra_without_loading_torch_and_the_local_store(tmp_path):
    report = await run_doctor(settings(tmp_path))
    embeddings = row(report, "embeddings")
    assert embeddings.status is Status.OK and "not loaded: --deep loads it" in embeddings.detail
    qdrant = row(report, "qdrant")
    assert qdrant.status is Status.OK and str(tmp_path / "data" / "qdrant") in qdrant.detail


async def test_an_unreachable_qdrant_server_is_a_warning(tmp_path, closed_port):
    url = f"http://127.0.0.1:{closed_port}"
    report = await run_doctor(settings(tmp_path, qdrant_url=url))
    qdrant = row(report, "qdrant")
    assert qdrant.status is Status.WARN and f"cannot reach the Qdrant server {url}" in qdrant.detail
    assert "OPERATE_MCP_QDRANT_URL" in qdrant.fix


async def test_knowledge_off_needs_neither_embeddings_nor_qdrant(tmp_path):
    report = await run_doctor(settings(tmp_path, knowledge_enabled=False, qdrant_url="http://127.0.0.1:1"))
    assert row(report, "embeddings").status is Status.OK and row(report, "qdrant").status is Status.OK


def test_the_cli_prints_json_and_exits_1_when_a_check_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPERATE_MCP_KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("OPERATE_MCP_KNOWLEDGE_ENABLED", "false")
    assert main(["doctor", "--format", "json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert {c["name"]: c["status"] for c in out["checks"]} == {
        "data dir": "ok",
        "kubectl": "ok",
        "kubeconfig": "fail",
        "cluster": "warn",
        "identity": "warn",
        "model key": "warn",
        "model": "warn",
        "embeddings": "ok",
        "qdrant": "ok",
    }


def test_the_cli_table_never_cuts_a_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPERATE_MCP_KUBECONFIG", str(tmp_path / "missing"))
    monkeypatch.setenv("OPERATE_MCP_KNOWLEDGE_ENABLED", "false")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["doctor"]) == 1
    narrow = capsys.readouterr().out
    assert "…" not in narrow and "OPERATE_MCP_ANTHR" in narrow  # folded over lines, not cut
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["doctor"]) == 1
    wide = capsys.readouterr().out.splitlines()
    kube = next(line for line in wide if "kubeconfig" in line and "fail" in line)
    assert f"the kubeconfig {tmp_path / 'missing'} does not exist" in kube
    assert "set OPERATE_MCP_KUBECONFIG to a kubeconfig that reaches your cluster" in kube
