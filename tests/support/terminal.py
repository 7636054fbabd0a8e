"""Run the CLI as a person would: in a terminal (a pty), typing an answer at its prompt."""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def run_in_terminal(args: list[str], typed: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str]:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "operate_mcp", *args], stdin=slave, stdout=slave,
                                stderr=slave, env=env, close_fds=True)
        os.write(master, typed.encode() + b"\n")
        code = proc.wait(timeout=timeout)
        os.close(slave)
        slave = -1
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return code, out.decode(errors="replace")
    finally:
        if slave != -1:
            os.close(slave)
        os.close(master)
