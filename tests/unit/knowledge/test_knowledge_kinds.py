"""Knowledge kinds are enforced after parsing: over MCP only patterns are written, an item's own `kind`
must agree with the kind asked for, and every change is audited with the ids and kinds written, on
every channel (MCP and CLI)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import yaml

from operate_mcp.audit.log import AuditEntry, AuditLog
from operate_mcp.cli import main
from operate_mcp.config import Settings
from operate_mcp.identity import os_user
from operate_mcp.knowledge.base import KnowledgeBase
from operate_mcp.knowledge.manage import manage_knowledge
from operate_mcp.knowledge.models import KnowledgeError

PATTERN = textwrap.dedent("""\
    kind: pattern
    id: canary-release
    name: Canary release
    description: Send a small share of traffic to the new version first.
    recommendation:
      summary: Run a second Deployment with one replica behind the same Service.
    rationale: A bad version hurts a few requests, not all of them.
    """)

# The attack from the issue: a "pattern" import whose YAML says it is the no-latest-tag policy, allowing latest.
POLICY_AS_PATTERN = textwrap.dedent("""\
    kind: policy
    id: no-latest-tag
    name: No latest image tags
    description: Rewritten over MCP so that latest passes.
    effect: warn
    rules:
      - expression: "true"
    """)

OWN_POLICY = textwrap.dedent("""\
    kind: policy
    id: max-ten-replicas
    name: At most ten replicas
    description: Nothing scales past ten replicas.
    rules:
      - match: change.replicas != null
        expression: change.replicas <= 10
        message: at most ten replicas
    """)


@pytest.fixture
def kb(tmp_path: Path) -> KnowledgeBase:
    return KnowledgeBase(Settings(data_dir=tmp_path))


@pytest.fixture
def audit(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path)


def entries(audit: AuditLog, kind: str) -> list[AuditEntry]:
    return [e for e in audit.entries() if e.kind == kind]


def no_latest_tag(kb: KnowledgeBase) -> str:
    item = kb.get("policy", "no-latest-tag")
    assert item is not None
    return item.digest()


def test_a_pattern_import_whose_yaml_says_policy_is_refused_and_the_policy_is_unchanged(kb, audit) -> None:
    before = no_latest_tag(kb)
    with pytest.raises(KnowledgeError, match="says kind: policy but kind=pattern was asked"):
        manage_knowledge(
            kb, "import", "pattern", yaml_text=POLICY_AS_PATTERN, channel="mcp", audit=audit, actor="agent"
        )
    assert no_latest_tag(kb) == before
    assert entries(audit, "knowledge.change") == []
    (refused,) = entries(audit, "knowledge.refused")
    assert refused.actor == "agent" and refused.data["channel"] == "mcp" and refused.data["action"] == "import"


def test_the_same_disguise_as_a_json_item_or_a_create_is_refused(kb) -> None:
    before = no_latest_tag(kb)
    item = {"kind": "policy", "id": "no-latest-tag", "name": "x", "description": "x", "rules": [{"expression": "true"}]}
    with pytest.raises(KnowledgeError, match="says kind: policy"):
        manage_knowledge(kb, "import", "pattern", item=item, channel="mcp")
    with pytest.raises(KnowledgeError, match="says kind: policy"):
        manage_knowledge(kb, "create", "pattern", yaml_text=POLICY_AS_PATTERN, replace=True, channel="mcp")
    assert no_latest_tag(kb) == before


def test_a_kind_that_disagrees_with_the_argument_is_refused_on_the_cli_too(kb) -> None:
    before = no_latest_tag(kb)
    with pytest.raises(KnowledgeError, match="says kind: policy but kind=pattern"):
        manage_knowledge(kb, "import", "pattern", yaml_text=POLICY_AS_PATTERN, channel="cli")
    assert no_latest_tag(kb) == before


def test_a_list_mixing_a_pattern_and_a_policy_writes_nothing_over_mcp(kb, audit) -> None:
    before = no_latest_tag(kb)
    item = yaml.safe_load(POLICY_AS_PATTERN)
    mixed = f"{PATTERN}---\n{POLICY_AS_PATTERN}"
    with pytest.raises(KnowledgeError, match=r"document 2 says kind: policy.*Nothing was written"):
        manage_knowledge(kb, "import", "pattern", yaml_text=mixed, channel="mcp", audit=audit, actor="agent")
    with pytest.raises(KnowledgeError, match="policies cannot be changed over MCP"):
        manage_knowledge(kb, "import", "policy", yaml_text=mixed, channel="mcp")
    with pytest.raises(KnowledgeError, match="policies cannot be changed over MCP"):
        manage_knowledge(kb, "import", "policy", item=item, channel="mcp")
    assert kb.get("pattern", "canary-release") is None
    assert no_latest_tag(kb) == before
    assert entries(audit, "knowledge.change") == []


def test_mcp_is_the_default_channel_so_a_caller_that_forgets_cannot_write_policies(kb) -> None:
    with pytest.raises(KnowledgeError, match="policies cannot be changed over MCP"):
        manage_knowledge(kb, "create", "policy", yaml_text=OWN_POLICY)
    assert kb.get("policy", "max-ten-replicas") is None


def test_over_mcp_the_starter_set_and_files_are_not_imported(kb, tmp_path) -> None:
    with pytest.raises(KnowledgeError, match="import takes the items inline"):
        manage_knowledge(kb, "import", "pattern", channel="mcp")
    path = tmp_path / "p.yaml"
    path.write_text(PATTERN)
    with pytest.raises(KnowledgeError, match="never as a path"):
        manage_knowledge(kb, "import", "pattern", path=str(path), channel="mcp")
    assert kb.get("pattern", "canary-release") is None


def test_deleting_a_policy_over_mcp_is_refused_whatever_kind_is_asked(kb, audit) -> None:
    with pytest.raises(KnowledgeError, match="policies cannot be changed over MCP"):
        manage_knowledge(kb, "delete", "policy", item_id="no-latest-tag", channel="mcp")
    with pytest.raises(KnowledgeError, match="no-latest-tag is a policy, not a pattern"):
        manage_knowledge(kb, "delete", "pattern", item_id="no-latest-tag", channel="mcp", audit=audit, actor="a")
    assert kb.get("policy", "no-latest-tag") is not None
    assert [e.data["id"] for e in entries(audit, "knowledge.refused")] == ["no-latest-tag"]


def test_patterns_are_written_over_mcp_and_the_audit_lists_the_ids_and_kinds_written(kb, audit) -> None:
    result = manage_knowledge(kb, "import", "pattern", yaml_text=PATTERN, channel="mcp", audit=audit, actor="agent")
    assert [(c.kind, c.id, c.change) for c in result.changes] == [("pattern", "canary-release", "created")]
    again = manage_knowledge(kb, "import", "pattern", yaml_text=PATTERN, channel="mcp", audit=audit, actor="agent")
    assert again.changes == []  # unchanged items are not written, so they are not reported as written
    deleted = manage_knowledge(
        kb, "delete", "pattern", item_id="canary-release", channel="mcp", audit=audit, actor="agent"
    )
    assert [(c.kind, c.id, c.change) for c in deleted.changes] == [("pattern", "canary-release", "deleted")]

    first, second, third = entries(audit, "knowledge.change")
    assert first.actor == "agent"
    assert first.data == {
        "action": "import",
        "channel": "mcp",
        "requested_kind": "pattern",
        "source": "inline",
        "changes": [{"kind": "pattern", "id": "canary-release", "change": "created"}],
    }
    assert second.data["changes"] == []
    assert third.data["action"] == "delete"
    assert third.data["changes"] == [{"kind": "pattern", "id": "canary-release", "change": "deleted"}]


def test_the_cli_channel_writes_policies_and_audits_them(kb, audit) -> None:
    result = manage_knowledge(kb, "create", "policy", yaml_text=OWN_POLICY, channel="cli", audit=audit, actor="alice")
    assert [(c.kind, c.id) for c in result.changes] == [("policy", "max-ten-replicas")]
    (entry,) = entries(audit, "knowledge.change")
    assert entry.actor == "alice" and entry.data["channel"] == "cli"
    assert entry.data["changes"] == [{"kind": "policy", "id": "max-ten-replicas", "change": "created"}]


def test_an_audited_call_must_name_its_actor(kb, audit) -> None:
    with pytest.raises(ValueError, match="needs the actor"):
        manage_knowledge(kb, "import", "pattern", yaml_text=PATTERN, audit=audit)


def test_a_policy_imported_with_the_cli_appears_in_the_audit_log(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    path = tmp_path / "policy.yaml"
    path.write_text(OWN_POLICY)
    assert main(["knowledge", "import", str(path), "--data-dir", str(data), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["created"] == ["policy/max-ten-replicas"]
    (entry,) = [e for e in AuditLog(data).entries() if e.kind == "knowledge.change"]
    assert entry.actor == os_user()
    assert entry.data["channel"] == "cli" and entry.data["action"] == "import"
    assert entry.data["source"] == str(path)
    assert entry.data["changes"] == [{"kind": "policy", "id": "max-ten-replicas", "change": "created"}]

    assert main(["knowledge", "delete", "max-ten-replicas", "--kind", "policy", "--data-dir", str(data)]) == 0
    last = [e for e in AuditLog(data).entries() if e.kind == "knowledge.change"][-1]
    assert last.data["changes"] == [{"kind": "policy", "id": "max-ten-replicas", "change": "deleted"}]


def test_cli_create_of_a_policy_file_needs_kind_policy(tmp_path, capsys) -> None:
    data = tmp_path / "data"
    path = tmp_path / "policy.yaml"
    path.write_text(OWN_POLICY)
    assert main(["knowledge", "create", str(path), "--data-dir", str(data)]) == 1
    assert "says kind: policy but kind=pattern" in capsys.readouterr().out
    assert main(["knowledge", "create", str(path), "--kind", "policy", "--data-dir", str(data)]) == 0
    assert [e.data["action"] for e in AuditLog(data).entries() if e.kind == "knowledge.change"] == ["create"]
