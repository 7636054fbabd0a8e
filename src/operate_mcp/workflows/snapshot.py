"""Before-execution snapshots of every object a proposal touches, and the rollback plan derived from them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from operate_mcp.fileio import atomic_write
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.targets import Target, read_target, restorable, unique_targets
from operate_mcp.model.command import ProposedCommand
from operate_mcp.model.proposal import ObservedObject

SECRET_RESOURCES = {"secrets"}


def take_snapshot(
    kubectl: Kubectl, commands: Sequence[ProposedCommand]
) -> tuple[list[tuple[Target, ObservedObject, dict[str, Any] | None]], list[ProposedCommand]]:
    """Observe every target now; derive commands that put each one back as it is.

    Secrets are left out of both: restoring one would mean storing its values and showing them in
    the rollback proposal. Their rollback is the owner's secret store.
    """
    seen = [(t, *read_target(kubectl, t)) for t in unique_targets(commands)]
    # Secret values never leave the cluster: no snapshot, no restore command carrying them.
    seen = [(t, o, None if t.resource in SECRET_RESOURCES else obj) for t, o, obj in seen]
    plan: list[ProposedCommand] = []
    for target, observed, obj in seen:
        if target.resource in SECRET_RESOURCES:
            continue
        ns = ["-n", target.namespace] if target.namespace else []
        where = f"{target.resource}/{target.name}"
        if obj is not None:
            plan.append(
                ProposedCommand(
                    argv=["kubectl", "apply", "-f", "-", *ns],
                    # JSON, not YAML: kubectl reads it exactly (PyYAML leaves `y`, `0o17`, `1e3` unquoted).
                    stdin=json.dumps(restorable(obj), indent=2),
                    description=f"restore {where} as it was before the change",
                )
            )
        elif observed.error is None:
            plan.append(
                ProposedCommand(
                    argv=["kubectl", "delete", f"{target.get_as}/{target.name}", *ns, "--ignore-not-found"],
                    description=f"remove {where}, which the change created",
                )
            )
    return seen, plan


def save_snapshot(path: Path, seen: Sequence[tuple[Target, ObservedObject, dict[str, Any] | None]]) -> None:
    """Kept beside the session (mode 0600): manifests may hold sensitive configuration."""
    data = [{"target": t.model_dump(), "observed": o.model_dump(), "object": obj} for t, o, obj in seen]
    atomic_write(path, json.dumps(data, indent=1))
