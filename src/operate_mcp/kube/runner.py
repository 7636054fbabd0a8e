"""Runs kubectl as an argv list: no shell, a timeout, a sanitised env, capped and redacted output."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from operate_mcp import tracing
from operate_mcp.config import Settings
from operate_mcp.redact import redact_plain


class CommandResult(BaseModel):
    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    duration_seconds: float
    truncated: bool = False
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def cap(text: str, limit: int) -> tuple[str, bool]:
    """Cut `text` to `limit` bytes (UTF-8) and say so, so the reader knows output is missing."""
    data = text.encode()
    if len(data) <= limit:
        return text, False
    kept = data[:limit].decode(errors="ignore")
    return f"{kept}\n[output truncated: {len(data) - limit} of {len(data)} bytes omitted]", True


class Kubectl:
    """The one place a kubectl process is started."""

    def __init__(self, settings: Settings) -> None:
        self.binary = settings.kubectl
        self.env = settings.kubectl_env()
        self.timeout = settings.command_timeout_seconds
        self.output_cap = settings.output_cap_bytes

    def run(
        self,
        argv: Sequence[str],
        *,
        stdin: str | None = None,
        timeout: float | None = None,
        output_cap: int | None = None,
        redact: bool = True,
    ) -> CommandResult:
        """Run `argv` (argv[0] must be "kubectl") exactly as given, with our binary and env.

        kubectl never inherits our stdin: over stdio that is the MCP JSON-RPC stream, which a
        `delete -i` prompt or a `-f -` without a manifest would read. Without `stdin` it reads
        /dev/null (EOF at once), so such a command fails at once instead of eating messages.
        """
        if not argv or argv[0] != "kubectl":
            raise ValueError(f"only kubectl commands are run; got {list(argv)[:1]}")
        with tracing.command(argv) as span:
            result = self._run(argv, stdin=stdin, timeout=timeout, output_cap=output_cap, redact=redact)
            tracing.record_exit(span, result.exit_code, result.timed_out)
            return result

    def _run(
        self, argv: Sequence[str], *, stdin: str | None, timeout: float | None, output_cap: int | None, redact: bool
    ) -> CommandResult:
        real = [self.binary, *argv[1:]]
        limit = output_cap or self.output_cap

        def shown(text: str) -> tuple[str, bool]:
            """Output as every caller gets it, whole or partial (a timeout): redacted unless asked not to be, capped."""
            return cap(redact_plain(text) if redact else text, limit)

        started = time.monotonic()
        try:
            proc = subprocess.run(
                real,
                input=stdin,
                stdin=subprocess.DEVNULL if stdin is None else None,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout or self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            return CommandResult(
                argv=list(argv),
                exit_code=-1,
                stdout=shown(out)[0],
                stderr=f"timed out after {timeout or self.timeout:.0f}s",
                duration_seconds=time.monotonic() - started,
                timed_out=True,
            )
        except FileNotFoundError as exc:
            return CommandResult(
                argv=list(argv),
                exit_code=127,
                stdout="",
                stderr=f"kubectl binary not found at {self.binary!r} ({exc.strerror}); set OPERATE_MCP_KUBECTL",
                duration_seconds=time.monotonic() - started,
            )
        stdout, cut_out = shown(proc.stdout)
        stderr, cut_err = shown(proc.stderr)
        return CommandResult(
            argv=list(argv),
            exit_code=proc.returncode,
            stdout=stdout,
            stderr=stderr,
            duration_seconds=time.monotonic() - started,
            truncated=cut_out or cut_err,
        )

    def kubeconfig(self) -> Path | None:
        value = self.env.get("KUBECONFIG")
        return Path(value) if value else None
