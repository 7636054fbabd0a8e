"""Run the CLI as a person would: in its own terminal (a pty that is its controlling terminal, so
/dev/tty works), answering each prompt once it has been shown."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Sequence


def _take_the_terminal() -> None:
    """In the child, after setsid(): make the pty on stdin its controlling terminal (/dev/tty)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_terminal(
    args: list[str], env: dict[str, str], answers: Sequence[tuple[str, str]] = (), timeout: float = 60
) -> tuple[int, str]:
    """`python -m operate_mcp *args` in a fresh pty; for each (prompt, reply), wait for `prompt` then type
    `reply` + Enter. Returns the exit code and everything the terminal showed.

    Replies wait for their prompt because getpass flushes input typed before it asks.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))  # wide: no wrapped lines
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "operate_mcp", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            close_fds=True,
            start_new_session=True,
            preexec_fn=_take_the_terminal,  # runs after setsid(): the only way to hand the child a tty
        )
    finally:
        os.close(slave)
    out = b""
    pending = list(answers)
    seen = 0  # replies are matched against output after the previous prompt
    deadline = time.monotonic() + timeout
    try:
        while True:
            if pending and pending[0][0].encode() in out[seen:]:
                prompt, reply = pending.pop(0)
                seen = out.index(prompt.encode(), seen) + len(prompt)
                os.write(master, reply.encode() + b"\n")
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"operate-mcp {' '.join(args)}: no exit within {timeout}s; output:\n{out.decode()}")
            ready, _, _ = select.select([master], [], [], min(left, 0.5))
            if not ready:
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child and every holder of the pty are gone
                break
            if not chunk:
                break
            out += chunk
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return code, out.decode(errors="replace")
