"""Reads what the analyzers judge: each resource once per namespace, whole, as kubectl returns it (JSON).

One `kubectl get <resource> -n <ns> -o json` per resource, run side by side; never one process per
object. Secrets are never read here: no analyzer needs their values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.secrets import is_secret_resource

LIST_OUTPUT_CAP = 256_000_000  # a namespace of thousands of pods is tens of MB of JSON; cut JSON is useless
MAX_PARALLEL_READS = 6


@dataclass
class Inventory:
    """One namespace's objects by resource (`pods`, `events`, ...), and the resources that could not be read."""

    namespace: str
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _list(kubectl: Kubectl, resource: str, namespace: str) -> tuple[list[dict[str, Any]], str | None]:
    # Read unredacted so the JSON parses; callers mask what they show (evidence texts), and no Secret is read.
    result = kubectl.run(
        ["kubectl", "get", resource, "-n", namespace, "-o", "json"], output_cap=LIST_OUTPUT_CAP, redact=False
    )
    if not result.ok:
        return [], (result.stderr or result.stdout).strip()[:300] or f"kubectl exited {result.exit_code}"
    if result.truncated:
        return [], f"the list of {resource} is larger than {LIST_OUTPUT_CAP} bytes"
    try:
        items = json.loads(result.stdout).get("items")
    except (json.JSONDecodeError, AttributeError):
        return [], f"kubectl did not answer with a JSON list of {resource}"
    return [i for i in items or () if isinstance(i, dict)], None


def read_inventory(kubectl: Kubectl, namespace: str, resources: Sequence[str]) -> Inventory:
    """Every resource in `resources`, read once in `namespace`; a failed read is recorded, not raised."""
    wanted = list(dict.fromkeys(resources))
    refused = [r for r in wanted if is_secret_resource(r)]
    if refused:
        raise ValueError(f"the inventory never reads Secrets (asked for {', '.join(refused)})")
    inventory = Inventory(namespace=namespace)
    if not wanted:
        return inventory
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_READS, len(wanted))) as pool:
        results = pool.map(lambda r: _list(kubectl, r, namespace), wanted)
        for resource, (items, error) in zip(wanted, results, strict=True):
            inventory.objects[resource] = items
            if error is not None:
                inventory.errors[resource] = error
    return inventory
