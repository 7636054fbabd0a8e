"""The kubectl grammar (kube/grammar.py) is data the classifier reads: what it lists is what gets refused.

An entry added to a table takes effect without touching the classifier: every forbidden command and
every forbidden flag in the grammar is refused with the grammar's own reason, and a mutating
command's allow-list is exactly what a proposal may carry.
"""

from __future__ import annotations

import pytest

from operate_mcp.kube.classifier import classify, parse_kubectl
from operate_mcp.kube.grammar import (
    COMMANDS,
    FORBIDDEN_COMMANDS,
    FORBIDDEN_FLAGS,
    GLOBAL_FLAGS,
    PROPOSAL_GLOBALS,
    FlagKind,
)
from operate_mcp.model.command import CommandClass


@pytest.mark.parametrize("path", sorted(FORBIDDEN_COMMANDS))
def test_every_forbidden_command_in_the_grammar_is_refused_with_its_reason(path: str) -> None:
    verdict = classify(["kubectl", *path.split(), "x"])
    assert verdict.command_class is CommandClass.FORBIDDEN
    assert FORBIDDEN_COMMANDS[path] in verdict.reason


@pytest.mark.parametrize("flag", sorted(FORBIDDEN_FLAGS))
def test_every_forbidden_flag_in_the_grammar_is_refused_with_its_reason(flag: str) -> None:
    verdict = classify(["kubectl", "get", "pods", f"--{flag}=x"])
    assert verdict.command_class is CommandClass.FORBIDDEN
    assert FORBIDDEN_FLAGS[flag] in verdict.reason


def test_every_global_flag_parses_so_a_refusal_can_name_it() -> None:
    for name, kind in GLOBAL_FLAGS.kinds.items():
        if name in FORBIDDEN_FLAGS or name == "help":
            continue
        value = "1" if name == "v" or kind is FlagKind.BOOL else "x"
        parsed = parse_kubectl(["kubectl", "get", "pods", f"--{name}={value}"])
        assert [f.name for f in parsed.flags] == [name]


MUTATING = sorted(
    (f"{name} {sub}".strip(), spec)
    for name, command in COMMANDS.items()
    for sub, spec in ([("", command)] if not command.subcommands else command.subcommands.items())
    if spec.mutating
)


@pytest.mark.parametrize(("path", "spec"), MUTATING, ids=[p for p, _ in MUTATING])
def test_a_mutating_command_refuses_every_flag_off_its_allow_list(path: str, spec) -> None:
    allowed = (spec.proposal_flags or frozenset()) | PROPOSAL_GLOBALS
    refused = sorted(set(spec.flags.kinds) - allowed - set(FORBIDDEN_FLAGS))
    target = [] if spec.shape == "none" else ["x"]
    for flag in refused:
        value = "true" if spec.flags.kinds[flag] is FlagKind.BOOL else "x"
        verdict = classify(["kubectl", *path.split(), *target, f"--{flag}={value}"])
        assert verdict.command_class is CommandClass.FORBIDDEN, (path, flag)
        assert f"--{flag}" in verdict.reason, (path, flag, verdict.reason)  # refused for this flag, not the line


def test_a_flag_on_the_allow_list_is_accepted() -> None:
    assert classify(["kubectl", "scale", "deployment/web", "--replicas=3"]).command_class is CommandClass.MUTATING
