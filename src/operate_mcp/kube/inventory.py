"""Reads what the analyzers judge after a change: each resource once per namespace, whole, through the
in-process client (`kube/reader.py`); never one request per object. Secrets are never read here: no
analyzer needs their values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from operate_mcp.kube.reader import list_many, reader_for
from operate_mcp.kube.runner import Kubectl
from operate_mcp.kube.secrets import is_secret_resource


@dataclass
class Inventory:
    """One namespace's objects by resource (`pods`, `events`, ...), and the resources that could not be read."""

    namespace: str
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def read_inventory(kubectl: Kubectl, namespace: str, resources: Sequence[str]) -> Inventory:
    """Every resource in `resources`, read once in `namespace` from the cluster `kubectl` talks to; a
    failed read is recorded, not raised (and its resource left out, so analyzers know it is unknown)."""
    wanted = list(dict.fromkeys(resources))
    refused = [r for r in wanted if is_secret_resource(r)]
    if refused:
        raise ValueError(f"the inventory never reads Secrets (asked for {', '.join(refused)})")
    inventory = Inventory(namespace=namespace)
    for resource, listing in list_many(reader_for(kubectl), wanted, namespace).items():
        if listing.error is None:
            inventory.objects[resource] = listing.items
        else:
            inventory.errors[resource] = listing.error
    return inventory
