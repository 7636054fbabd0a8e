"""Execution records: the model, the SQLite/FTS5 run store and its query language, metrics, failure alerts.

Turning a session into a record is a use case: workflows/recording.py."""

from operate_mcp.records.models import ExecutionRecord, RecordError, RecordNotFound, RunStatus
from operate_mcp.records.query import QuerySyntaxError, compile_query
from operate_mcp.records.store import RecordStore, RetentionResult, SearchPage

__all__ = [
    "ExecutionRecord",
    "QuerySyntaxError",
    "RecordError",
    "RecordNotFound",
    "RecordStore",
    "RetentionResult",
    "RunStatus",
    "SearchPage",
    "compile_query",
]
