"""The tamper-evident audit log: hash-chained day files, signed checkpoints, verification."""

from operate_mcp.audit.checkpoint import AuditKeyError, Checkpoint
from operate_mcp.audit.log import AuditEntry, AuditLog, AuditLogCorrupt, TornTail
from operate_mcp.audit.verify import Problem, VerifyReport, verify

__all__ = [
    "AuditEntry",
    "AuditKeyError",
    "AuditLog",
    "AuditLogCorrupt",
    "Checkpoint",
    "Problem",
    "TornTail",
    "VerifyReport",
    "verify",
]
