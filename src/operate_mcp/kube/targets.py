"""Which objects a proposed command touches, and how they look now: the basis of drift checks and risk."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from operate_mcp.errors import CommandRejected
from operate_mcp.kube.classifier import parse_kubectl
from operate_mcp.kube.manifests import parse_manifests
from operate_mcp.kube.runner import Kubectl
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject
from operate_mcp.model.resources import canonical_resource


class Target(BaseModel):
    """One object: `get_as` is how kubectl is asked for it, `resource` the canonical plural."""

    get_as: str
    resource: str
    name: str
    namespace: str | None = None
    kind: str | None = None


def _manifest_targets(stdin: str, namespace: str | None) -> list[Target]:
    """Every object kubectl reads from stdin; a manifest we cannot read exactly raises ManifestError."""
    return [
        Target(
            get_as=obj.get_as,
            resource=canonical_resource(obj.get_as),
            name=obj.name,
            namespace=obj.namespace or namespace,
            kind=obj.kind,
        )
        for obj in parse_manifests(stdin)
    ]


def targets_of(command: ProposedCommand) -> list[Target]:
    """The objects a command names or carries on stdin.

    Raises ManifestError (a CommandRejected) when it reads a manifest we cannot read exactly:
    callers treat such a command as unreadable (critical, blocked), never as touching nothing.
    """
    try:
        parsed = parse_kubectl(command.argv)
    except CommandRejected:
        return []
    found = [
        Target(get_as=r.type, resource=r.resource, name=r.name, namespace=parsed.namespace)
        for r in parsed.resources
        if r.name
    ]
    if parsed.uses_stdin:
        found += _manifest_targets(command.stdin or "", parsed.namespace)
    return found


def unique_targets(commands: Sequence[ProposedCommand]) -> list[Target]:
    seen: dict[tuple[str, str, str | None], Target] = {}
    for cmd in commands:
        for t in targets_of(cmd):
            seen.setdefault((t.resource, t.name, t.namespace), t)
    return list(seen.values())


_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields", "selfLink")


def restorable(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without server-owned fields, so applying it restores its spec, not its history."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in _SERVER_FIELDS}
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if k not in ("kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision")
    }
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    return {k: v for k, v in {**obj, "metadata": meta}.items() if k != "status"}


def fingerprint(obj: dict[str, Any]) -> str:
    """Changes when anyone changes the object, not when controllers update its status."""
    return hashlib.sha256(json.dumps(restorable(obj), sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def read_target(kubectl: Kubectl, target: Target) -> tuple[ObservedObject, dict[str, object] | None]:
    """The object as it is now (with its manifest), or that it does not exist."""
    argv = ["kubectl", "get", f"{target.get_as}/{target.name}", "-o", "json"]
    if target.namespace:
        argv += ["-n", target.namespace]
    result = kubectl.run(argv, redact=False, output_cap=4_000_000)
    if not result.ok:
        missing = "NotFound" in result.stderr or "not found" in result.stderr
        return ObservedObject(
            kind=target.kind or target.resource,
            name=target.name,
            namespace=target.namespace,
            exists=False,
            error=None if missing else result.stderr.strip()[:500],
        ), None
    obj = json.loads(result.stdout)
    meta = obj.get("metadata", {})
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    return ObservedObject(
        kind=obj.get("kind") or target.kind or target.resource,
        resource=target.resource,
        name=target.name,
        namespace=meta.get("namespace", target.namespace),
        exists=True,
        resource_version=meta.get("resourceVersion"),
        generation=meta.get("generation"),
        replicas=replicas if isinstance(replicas, int) else None,
        fingerprint=fingerprint(obj),
    ), obj


def read_targets(kubectl: Kubectl, commands: Sequence[ProposedCommand]) -> list[ObservedObject]:
    return [read_target(kubectl, t)[0] for t in unique_targets(commands)]
