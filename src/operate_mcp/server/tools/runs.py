"""Execution records over MCP: every tool only reads; each body is one call into records/."""

from datetime import UTC, date, datetime
from typing import Annotated

import anyio
from mcp.server.mcpserver import MCPServer
from pydantic import Field

from operate_mcp.errors import OperateError
from operate_mcp.records.metrics import Metrics, compute_metrics, today
from operate_mcp.records.models import ExecutionRecord
from operate_mcp.records.store import SearchPage
from operate_mcp.records.summary import RunSummary
from operate_mcp.server.app import App
from operate_mcp.server.errors import tool
from operate_mcp.server.tools import READ_ONLY


def register(mcp: MCPServer, app: App) -> None:
    records = app.records

    @tool(
        mcp,
        title="Search execution records",
        description=(
            "Search past executions. Qualifiers status:, category: (update, scale, ...), intent: (glob), tag:, "
            "namespace:, resource:, image: (glob), reason: (CrashLoopBackOff, OOMKilled, ...), triggered_by:, "
            "caller:, session:, duration:>60, after:2026-01-01, before:; free text; AND / OR / NOT / -x; parentheses. "
            "Returns a page of runs and facets (counts by status, intent, namespace)."
        ),
        annotations=READ_ONLY,
    )
    async def runs_search(
        query: Annotated[
            str,
            Field(
                description=(
                    'Search language: status:failed namespace:shop intent:"deploy*" duration:>60 '
                    "after:2026-11-01, free text, AND/OR/NOT, parentheses (docs/search.md)."
                )
            ),
        ] = "",
        page: Annotated[int, Field(description="Page number, from 1.", ge=1)] = 1,
        perPage: Annotated[int, Field(description="Runs per page (at most 200).", ge=1, le=200)] = 20,
    ) -> SearchPage:
        return await anyio.to_thread.run_sync(
            lambda: records.search(query, page=page, per_page=min(max(perPage, 1), 200))
        )

    @tool(
        mcp, title="Show one execution record", description="The full record of a run (run-...).", annotations=READ_ONLY
    )
    async def runs_show(id: Annotated[str, Field(description="The execution record id (run-...).")]) -> ExecutionRecord:
        return await anyio.to_thread.run_sync(records.get, id)

    @tool(
        mcp,
        title="Summarise one execution",
        description="One line, key events, errors and suggestions for a run (run-...).",
        annotations=READ_ONLY,
    )
    async def runs_summary(id: Annotated[str, Field(description="The execution record id (run-...).")]) -> RunSummary:
        return await anyio.to_thread.run_sync(records.summary, id)

    @tool(
        mcp,
        title="Execution metrics",
        description=(
            "Totals, success / failure / rollback counts, success rate, average and p95 duration, per category "
            "(update, scale, ...), optionally per intent, and the steps that fail most (by verb and kind), of the runs "
            "matching a search query. Dates are ISO (2026-11-01); without start and end the window is today (UTC). "
            "Windows older than the retention are answered from daily aggregates (source says which)."
        ),
        annotations=READ_ONLY,
    )
    async def metrics(
        start: Annotated[str | None, Field(description="First day counted, ISO date (2026-11-01).")] = None,
        end: Annotated[str | None, Field(description="Last day counted, ISO date.")] = None,
        byIntent: Annotated[bool, Field(description="Also break the figures down per intent.")] = False,
        query: Annotated[
            str,
            Field(description='Which runs, in the search language: "category:update namespace:shop" (docs/search.md).'),
        ] = "",
    ) -> Metrics:
        lo, hi = _date(start, "start"), _date(end, "end")
        if lo is None and hi is None:
            lo = hi = today()
        return await anyio.to_thread.run_sync(
            lambda: compute_metrics(records, start=lo, end=hi, by_intent=byIntent, query=query)
        )


def _date(text: str | None, what: str) -> date | datetime | None:
    """An ISO date is the whole UTC day (an end date is included); a time without a zone is UTC."""
    if text is None:
        return None
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise OperateError(f"{what}={text!r} is not an ISO date such as 2026-11-01") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
