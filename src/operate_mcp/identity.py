"""Who is asking: the OS user on stdio, the bearer token's user over HTTP."""

from __future__ import annotations

import getpass
import os


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"
