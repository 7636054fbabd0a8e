"""The analyzer contract: the rules for one resource kind, pure (objects in, findings out)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from operate_mcp.analyzers.objects import KubeObject
from operate_mcp.analyzers.related import Related
from operate_mcp.model.finding import Finding


class Analyzer(Protocol):
    """The rules for one resource kind. `resource` is the kubectl resource whose objects it judges;
    `reads` the other resources it looks at through `Related` (so the caller reads them too);
    `cluster_scoped` analyzers (nodes, webhooks) run once per cluster, the rest once per namespace."""

    name: str
    resource: str
    reads: tuple[str, ...]
    cluster_scoped: bool

    def analyze(self, objects: Sequence[KubeObject], related: Related) -> list[Finding]: ...
