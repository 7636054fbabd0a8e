"""check_anomalies over MCP: what observation found after executions (and `watch` after that), read-only."""

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from pydantic import Field

from operate_mcp.model.observation import AnomalySeverity, Category
from operate_mcp.server.app import App
from operate_mcp.server.errors import tool
from operate_mcp.server.tools import READ_ONLY
from operate_mcp.workflows.anomalies import AnomalyPage, list_anomalies

DESCRIPTION = (
    "Anomalies found after executions: failure states (CrashLoopBackOff, OOMKilled, ...), unexpected "
    "restarts, memory spikes, error-rate increases, runs slower than their learned baseline, flaky "
    "operations, new error patterns in logs. Each: rule, severity P1-P3, expected vs actual, evidence, "
    "suggested action, the run it belongs to (read it with runs_show), similar past failures."
)


def register(mcp: MCPServer, app: App) -> None:
    @tool(mcp, title="Check anomalies", description=DESCRIPTION, annotations=READ_ONLY)
    async def check_anomalies(
        since: Annotated[
            str | None, Field(description="From when: a date (2026-11-30), a time, or a look-back (24h, 7d).")
        ] = "24h",
        category: Annotated[
            Category | None, Field(description="Only runs of this operation category (update, scale, ...).")
        ] = None,
        severity: Annotated[AnomalySeverity | None, Field(description="Minimum severity: P2 means P1 and P2.")] = None,
        namespace: Annotated[str | None, Field(description="Only anomalies in this namespace.")] = None,
        runId: Annotated[str | None, Field(description="Only the anomalies of this run (run-...).")] = None,
        limit: Annotated[int, Field(description="At most this many, newest first (1-500).")] = 50,
    ) -> AnomalyPage:
        return list_anomalies(
            app.deps,
            since=since,
            category=category,
            severity=severity,
            namespace=namespace,
            run_id=runId,
            limit=limit,
        )
