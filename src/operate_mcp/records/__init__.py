"""Execution records: the model, the SQLite/FTS5 run store and its query language, metrics, failure alerts."""

from operate_mcp.records.models import ExecutionRecord, RecordError, RecordNotFound, RunStatus, record_from_session
from operate_mcp.records.query import QuerySyntaxError, compile_query
from operate_mcp.records.recorder import record_execution
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
    "record_execution",
    "record_from_session",
]
