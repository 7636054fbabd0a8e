"""Knowledge over MCP: patterns and policies (manage_knowledge) and the cluster's capabilities (scan)."""

from typing import Annotated, Any, Literal

import anyio
import anyio.from_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from operate_mcp.knowledge import manage
from operate_mcp.knowledge.capabilities import ScanReport
from operate_mcp.knowledge.manage import ManageResult
from operate_mcp.server.app import App
from operate_mcp.server.errors import tool


class ScanResult(BaseModel):
    report: ScanReport


def register(mcp: MCPServer, app: App) -> None:
    @tool(
        mcp,
        title="Manage patterns and policies",
        description=(
            "Patterns (how this organisation does things) and policies (CEL rules enforced in code on every "
            "proposal): action list|get|search|create|delete|import, kind pattern|policy|capability. create and "
            "import take the item as YAML text (yamlText) or a JSON object (item)."
        ),
        annotations=ToolAnnotations(
            readOnlyHint=False, destructiveHint=True, idempotentHint=False, openWorldHint=False
        ),
    )
    async def manage_knowledge(
        action: Annotated[
            Literal["list", "get", "create", "delete", "search", "import"],
            Field(description="What to do. Policies can only be read over MCP; a person changes them with the CLI."),
        ],
        kind: Annotated[
            Literal["pattern", "policy", "capability"], Field(description="Which kind of knowledge item.")
        ] = "pattern",
        id: Annotated[str | None, Field(description="The item id, for get and delete.")] = None,
        query: Annotated[str | None, Field(description="Words to search for, for search.")] = None,
        yamlText: Annotated[
            str | None, Field(description="The item (or several, as YAML documents) for create and import.")
        ] = None,
        item: Annotated[
            dict[str, Any] | None,
            Field(description="The item as a JSON object, for create and import (instead of yamlText)."),
        ] = None,
        k: Annotated[int, Field(description="How many search results.", ge=1, le=50)] = 5,
    ) -> ManageResult:
        kb = app.require_knowledge()
        # The knowledge layer refuses policy changes over MCP (after parsing the items) and audits
        # every change it makes, whichever channel asked.
        return await anyio.to_thread.run_sync(
            lambda: manage.manage_knowledge(
                kb,
                action,
                kind,
                item_id=id,
                item=item,
                yaml_text=yamlText,
                query=query,
                k=k,
                channel="mcp",
                audit=app.audit,
                actor=app.caller,
            )
        )

    @tool(
        mcp,
        title="Scan cluster capabilities",
        description=(
            "Discover what this cluster has (API resources, CRDs, add-ons such as KEDA, VPA, metrics-server, "
            "Prometheus Operator, cert-manager, Velero, CloudNativePG, Kyverno, Gatekeeper, Argo CD, Flux, Istio, "
            "Gateway API) and store it as capabilities the analysis uses. Re-scan updates only what changed."
        ),
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=True),
    )
    async def scan(ctx: Context[Any, Any]) -> ScanResult:
        kb = app.require_knowledge()

        def report_progress(step: int, total: int, message: str) -> None:
            anyio.from_thread.run(lambda: ctx.report_progress(step, total, message))

        report = await anyio.to_thread.run_sync(lambda: kb.scan(app.kubectl, report_progress))
        return ScanResult(report=report)
