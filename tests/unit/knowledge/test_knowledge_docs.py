"""The YAML examples in docs/patterns.md and docs/policies.md are valid, and the policy examples table is true."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

from operate_mcp.knowledge.models import Policy, load_yaml_items, parse_item, starter_dir
from operate_mcp.knowledge.policies import evaluate_policies, validate_policy
from operate_mcp.model.command import ProposedCommand

DOCS = Path(__file__).resolve().parents[3] / "docs"
YAML_BLOCK = re.compile(r"```yaml\n(.*?)```", re.S)
EXAMPLE_ROW = re.compile(r"^\| `(kubectl [^`]+)` \| `([a-z-]+)` \|$", re.M)


def test_the_yaml_examples_are_valid_items() -> None:
    for doc, kind in (("patterns.md", "pattern"), ("policies.md", "policy")):
        blocks = [yaml.safe_load(b) for b in YAML_BLOCK.findall((DOCS / doc).read_text())]
        items = [parse_item(b, source=doc) for b in blocks if isinstance(b, dict) and b.get("kind") == kind]
        assert items, f"{doc} has no {kind} example"
        for item in items:
            if isinstance(item, Policy):
                validate_policy(item)


def test_the_policy_examples_table_says_what_the_code_does() -> None:
    policies = [p for p in load_yaml_items(starter_dir() / "policies") if isinstance(p, Policy)]
    rows = EXAMPLE_ROW.findall((DOCS / "policies.md").read_text())
    assert len(rows) >= 5
    for command, policy_id in rows:
        checks = evaluate_policies(policies, [ProposedCommand(argv=shlex.split(command), description="doc")])
        assert [c.policy_id for c in checks if not c.passed] == [policy_id], command
