"""Kubernetes objects as the analyzers see them (decoded `kubectl get -o json`), and the few readers of
their fields every analyzer needs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KubeObject = Mapping[str, Any]  # one object as the API server returns it


def meta(obj: KubeObject) -> Mapping[str, Any]:
    value = obj.get("metadata")
    return value if isinstance(value, Mapping) else {}


def status(obj: KubeObject) -> Mapping[str, Any]:
    value = obj.get("status")
    return value if isinstance(value, Mapping) else {}


def spec(obj: KubeObject) -> Mapping[str, Any]:
    value = obj.get("spec")
    return value if isinstance(value, Mapping) else {}


def condition(obj: KubeObject, kind: str) -> Mapping[str, Any] | None:
    """The status condition of type `kind` (Ready, PodScheduled, Progressing, ...), if the object has one."""
    for c in status(obj).get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == kind:
            return c
    return None


def shown_condition(c: Mapping[str, Any]) -> str:
    """`False (ContainersNotReady): containers with unready status: [app]`, the way describe prints it."""
    text = str(c.get("status", "Unknown"))
    if c.get("reason"):
        text += f" ({c['reason']})"
    return f"{text}: {c['message']}" if c.get("message") else text


def deleting(obj: KubeObject) -> bool:
    """Being deleted: what it shows now is on its way out, not a problem to report."""
    return bool(meta(obj).get("deletionTimestamp"))
