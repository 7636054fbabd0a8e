"""How long work reports progress: (step, total, message), awaited; MCP progress notifications at the edge."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

Progress = Callable[[int, int, str], Awaitable[None]]
