"""`operate-mcp doctor` on the test bed: a working setup is a table of ok rows and exit 0; an identity that may only
view fails the identity row with the fix, and the exit code says so.

The CLI runs as a person runs it (settings from OPERATE_MCP_* variables); the model is the local Messages API
server (tests/support/messages_api.py) reached through the real Anthropic SDK.
"""

from __future__ import annotations

import json

import pytest

from operate_mcp.cli import main
from support.kube_identity import service_account_kubeconfig
from support.messages_api import MessagesAPI, recorded, serve


@pytest.fixture
def doctor_env(testbed, tmp_path, monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "OPERATE_MCP_CONFIG", "OPERATE_MCP_QDRANT_URL", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("OPERATE_MCP_KUBECONFIG", str(testbed.kubeconfig))
    monkeypatch.setenv("OPERATE_MCP_KUBECTL", testbed.kubectl)
    monkeypatch.setenv("OPERATE_MCP_ANTHROPIC_API_KEY", "sk-local-test")
    monkeypatch.setenv("COLUMNS", "400")  # one table row per line
    api = MessagesAPI([recorded("final_no_change")])
    with serve(api) as url:
        monkeypatch.setenv("OPERATE_MCP_ANTHROPIC_BASE_URL", url)
        yield api


def rows(out: str) -> dict[str, str]:
    """check name -> its whole table line."""
    found = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")]
        if len(cells) > 3 and cells[1] and cells[1] != "check":
            found[cells[1]] = line
    return found


def test_the_table_on_the_bed_is_all_ok(testbed, doctor_env, capsys):
    assert main(["doctor"]) == 0
    table = rows(capsys.readouterr().out)
    assert set(table) == {
        "data dir", "kubectl", "kubeconfig", "cluster", "identity", "model key", "model", "embeddings", "qdrant",
    }  # fmt: skip
    for name, line in table.items():
        assert "│ ok " in line, line
    assert str(testbed.kubeconfig) in table["kubeconfig"]
    assert "https://127.0.0.1:" in table["cluster"] and "answers" in table["cluster"]
    assert "may read and dry-run changes in namespace default" in table["identity"]
    assert len(doctor_env.requests) == 1 and doctor_env.requests[0]["max_tokens"] == 1


def test_a_view_only_identity_fails_the_identity_row(testbed, namespace, doctor_env, tmp_path, monkeypatch, capsys):
    testbed.kubectl_run("create", "serviceaccount", "viewer", "-n", namespace)
    testbed.kubectl_run(
        "create", "rolebinding", "viewer", "--clusterrole=view", f"--serviceaccount={namespace}:viewer", "-n", namespace
    )
    config = service_account_kubeconfig(testbed, "viewer", namespace, namespace, tmp_path / "viewer.kubeconfig")
    monkeypatch.setenv("OPERATE_MCP_KUBECONFIG", str(config))
    assert main(["doctor", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert status["cluster"] == "ok" and status["identity"] == "fail" and status["model"] == "ok"
    identity = next(c for c in report["checks"] if c["name"] == "identity")
    assert f"this identity cannot dry-run changes (patch/create) in namespace {namespace}" in identity["detail"]
    assert identity["fix"].startswith("bind it a Role granting patch and create")
