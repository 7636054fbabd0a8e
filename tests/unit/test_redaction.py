"""Secrets never reach the audit log, whatever their keys are called."""

from __future__ import annotations

import json

from operate_mcp.audit.log import AuditLog
from operate_mcp.redact import redact_text

SECRET_MANIFEST = """apiVersion: v1
kind: Secret
metadata: {name: db, namespace: shop}
type: Opaque
data:
  dburl: cG9zdGdyZXM6Ly91OnBAaA==
stringData:
  conn: postgres://u:p@db/x
"""


def test_secret_manifest_on_stdin_is_masked_in_the_audit_log(tmp_path):
    log = AuditLog(tmp_path)
    log.append(
        "proposal",
        actor="alice",
        data={"commands": [{"argv": ["kubectl", "apply", "-f", "-"], "stdin": SECRET_MANIFEST}]},
    )
    raw = next((tmp_path / "audit").glob("*.jsonl")).read_text()
    assert "cG9zdGdyZXM6Ly91OnBAaA==" not in raw and "postgres://u:p@db/x" not in raw
    stdin = json.loads(raw.splitlines()[0])["data"]["commands"][0]["stdin"]
    assert "dburl" in stdin and "conn" in stdin, "keys stay, so a reader sees what changed"


def test_configmaps_are_left_alone(tmp_path):
    log = AuditLog(tmp_path)
    cm = SECRET_MANIFEST.replace("kind: Secret", "kind: ConfigMap").replace("stringData", "binaryData")
    log.append("proposal", actor="alice", data={"stdin": cm})
    raw = next((tmp_path / "audit").glob("*.jsonl")).read_text()
    assert "cG9zdGdyZXM6Ly91OnBAaA==" in raw


def test_tokens_in_command_output_are_masked():
    out = redact_text("Authorization: Bearer abcdefghijklmnop123 and password=hunter22 and sk-ant-api03-xyzxyzxyzxyz")
    assert "abcdefghijklmnop123" not in out and "hunter22" not in out and "xyzxyzxyzxyz" not in out
