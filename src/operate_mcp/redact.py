"""Masks secrets in text before it reaches logs, records, prompts or the model."""

from __future__ import annotations

import re

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S),
        "[REDACTED PRIVATE KEY]",
    ),
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [REDACTED]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{5,}"), "[REDACTED JWT]"),
    (
        re.compile(
            r"(?i)((?:password|passwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret)"
            r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;}{]{4,})"
        ),
        r"\1[REDACTED]",
    ),
    (re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"), "[REDACTED AWS KEY]"),
    (re.compile(r"\bsk-ant-[A-Za-z0-9_-]{10,}"), "[REDACTED API KEY]"),
]


def redact_text(text: str) -> str:
    """Replace anything that looks like a credential; errs on the side of masking."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
