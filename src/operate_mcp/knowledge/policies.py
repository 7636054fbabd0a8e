"""Policies enforced in code: CEL rules over every change a proposal would make.

Each rule sees four variables:
  change    the normalised change (knowledge.changes): verb, kind, resource, name, namespace,
            replicas, min_replicas, max_replicas, images, labels, manifest, patch, ...
  observed  the target as it is now: {exists, replicas, labels} (exists=false, nulls when unknown)
  ns        the change's namespace: {name, labels, production}
  config    {production_namespaces}
A rule whose `match` is false does not apply; otherwise `expression` must be true. A rule that
cannot be evaluated counts as violated (fail closed), with the CEL error in the message. So does every
policy for a change whose effect cannot be read (`change.parse_error`: a patch kubectl reads otherwise
than we could, a manifest we cannot read): null fields there mean "unknown", not "unchanged".
CEL is evaluated by the CEL library (common-expression-language), never by Python eval.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from operate_mcp.errors import ConfigError
from operate_mcp.knowledge.changes import blank_change, changes_of, describe, image_ref
from operate_mcp.knowledge.models import KnowledgeError, Policy, PolicyEffect
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject, PolicyCheck
from operate_mcp.redact import redact_plain

ObservedLookup = Callable[[dict[str, Any]], Mapping[str, Any] | None]
NamespaceLabels = Callable[[str], Mapping[str, str]]
MAX_LISTED_VIOLATIONS = 5
PRODUCTION_LABEL_KEYS = ("environment", "env", "operate-mcp.dev/environment")
PRODUCTION_LABEL_VALUES = ("production", "prod")
_UNKNOWN = "what it changes cannot be read, so it may break this policy"


class PolicyRuleError(KnowledgeError):
    """A rule does not compile or cannot run on a sample change."""


@functools.lru_cache(maxsize=512)
def _program(expression: str) -> Any:
    try:
        import cel  # imported on first use: it is not needed to start the server
    except ImportError as exc:
        raise ConfigError("policy evaluation needs the CEL library: pip install common-expression-language") from exc
    try:
        return cel.compile(expression)
    except ValueError as exc:
        raise PolicyRuleError(f"CEL does not compile: {expression!r}: {exc}") from exc


def _run(expression: str, variables: dict[str, Any]) -> Any:
    return _program(expression).execute(variables)


def _blank_observed() -> dict[str, Any]:
    return {"exists": False, "replicas": None, "labels": {}}


def _namespace_view(name: str, labels: Mapping[str, str], production_names: Sequence[str]) -> dict[str, Any]:
    production = name in production_names or any(
        labels.get(k) in PRODUCTION_LABEL_VALUES for k in PRODUCTION_LABEL_KEYS
    )
    return {"name": name, "labels": dict(labels), "production": production}


def _evaluate_rule(policy: Policy, rule_index: int, variables: dict[str, Any]) -> str | None:
    """None if the rule passes or does not apply; else the violation message."""
    rule = policy.rules[rule_index]
    try:
        if rule.match is not None:
            applies = _run(rule.match, variables)
            if not isinstance(applies, bool):
                return f"rule {rule_index + 1} `match` returned {type(applies).__name__}, not bool"
            if not applies:
                return None
        result = _run(rule.expression, variables)
    except PolicyRuleError as exc:
        return f"rule {rule_index + 1} is broken ({exc}); fix or delete policy {policy.id}"
    except ConfigError:
        raise
    except Exception as exc:  # CEL evaluation errors (KeyError, TypeError, RuntimeError): fail closed
        return f"rule {rule_index + 1} could not be evaluated ({type(exc).__name__}: {exc})"
    if result is True:
        return None
    if not isinstance(result, bool):
        return f"rule {rule_index + 1} returned {type(result).__name__}, not bool"
    message = rule.message or f"violates {policy.name}"
    if rule.message_expression:
        try:
            custom = _run(rule.message_expression, variables)
            message = str(custom) if custom else message
        except Exception as exc:  # the violation stands; only its wording failed
            message = f"{message} (messageExpression failed: {type(exc).__name__})"
    return message


def validate_policy(policy: Policy) -> None:
    """Compile every rule and run it on sample changes, so a broken rule is refused at import, not at use."""
    samples = [
        blank_change(1, ProposedCommand(argv=["kubectl", "apply", "-f", "-"], description="sample"), None),
        {
            **blank_change(1, ProposedCommand(argv=["kubectl", "scale"], description="sample"), None),
            "verb": "scale", "command": "scale", "kind": "Deployment", "resource": "deployments", "name": "x",
            "namespace": "default", "replicas": 3, "min_replicas": 1, "max_replicas": 5,
            "images": [image_ref("nginx:1.27")], "labels": {"app": "x"}, "manifest": {"spec": {"replicas": 3}},
        },
    ]
    for rule in policy.rules:
        for expr in (rule.match, rule.expression, rule.message_expression):
            if expr is not None:
                _program(expr)
    for sample in samples:
        for observed in (_blank_observed(), {"exists": True, "replicas": 4, "labels": {"app": "x"}}):
            variables = {
                "change": sample,
                "observed": observed,
                "ns": _namespace_view(sample["namespace"], {}, []),
                "config": {"production_namespaces": ["production"]},
            }
            for i in range(len(policy.rules)):
                problem = _evaluate_rule(policy, i, variables)
                if problem and ("could not be evaluated" in problem or "returned" in problem):
                    raise PolicyRuleError(f"policy {policy.id}: {problem} on a sample change")


def observed_lookup(observed: Sequence[ObservedObject]) -> ObservedLookup:
    """Current state from the workflow's ObservedObjects (replicas only; labels are not kept there)."""
    by_key = {(o.resource or "", o.name, o.namespace or ""): o for o in observed}
    by_name = {(o.name, o.namespace or ""): o for o in observed}

    def lookup(change: dict[str, Any]) -> Mapping[str, Any] | None:
        o = by_key.get((change["resource"], change["name"], change["namespace"])) or by_name.get(
            (change["name"], change["namespace"])
        )
        if o is None:
            return None
        return {"exists": o.exists, "replicas": o.replicas, "labels": {}}

    return lookup


def evaluate_policies(
    policies: Sequence[Policy],
    commands: Sequence[ProposedCommand],
    *,
    production_namespaces: Sequence[str] = ("production", "prod"),
    observe: ObservedLookup | None = None,
    namespace_labels: NamespaceLabels | None = None,
) -> list[PolicyCheck]:
    """One PolicyCheck per policy: passed, or every violation (first few listed) with the command it is in."""
    changes = changes_of(commands)
    contexts: list[dict[str, Any]] = []
    labels_cache: dict[str, Mapping[str, str]] = {}
    for change in changes:
        current = dict(_blank_observed())
        if observe is not None and change["name"]:
            found = observe(change)
            if found:
                current.update({k: v for k, v in found.items() if k in current})
        ns_name = change["namespace"]
        if ns_name not in labels_cache:
            labels_cache[ns_name] = namespace_labels(ns_name) if (namespace_labels and ns_name) else {}
        contexts.append({
            "change": change,
            "observed": current,
            "ns": _namespace_view(ns_name, labels_cache[ns_name], production_namespaces),
            "config": {"production_namespaces": list(production_namespaces)},
        })
    checks: list[PolicyCheck] = []
    for policy in policies:
        violations: list[str] = []
        for variables in contexts:
            if variables["change"]["parse_error"]:  # unknown: it may change anything, so no rule can pass it
                violations.append(f"{describe(variables['change'])}: {_UNKNOWN}: {variables['change']['parse_error']}")
            for i in range(len(policy.rules)):
                problem = _evaluate_rule(policy, i, variables)
                if problem:
                    violations.append(f"{describe(variables['change'])}: {problem}")
        violations = list(dict.fromkeys(violations))
        if violations:
            shown = violations[:MAX_LISTED_VIOLATIONS]
            more = len(violations) - len(shown)
            message = "; ".join(shown) + (f"; and {more} more" if more else "")
        else:
            message = "no change violates it" if changes else "no changes to check"
        checks.append(
            PolicyCheck(
                policy_id=policy.id,
                name=policy.name,
                passed=not violations,
                effect=policy.effect.value,
                message=redact_plain(message),
            )
        )
    return checks


def effect_of(checks: Sequence[PolicyCheck]) -> PolicyEffect | None:
    """The strongest effect among failed checks (block > raise-tier > warn), None if all passed."""
    failed = {c.effect for c in checks if not c.passed}
    for effect in (PolicyEffect.BLOCK, PolicyEffect.RAISE_TIER, PolicyEffect.WARN):
        if effect.value in failed:
            return effect
    return None
