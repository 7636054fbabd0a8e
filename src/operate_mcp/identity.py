"""Who is asking: the OS user on stdio, the bearer token's user over HTTP."""

from __future__ import annotations

import os
import pwd


def user_name(uid: int) -> str:
    """The account name of `uid` from the password database, or `uid:<n>` when it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid:{uid}"


def os_user() -> str:
    """The real user running this process.

    Never USER/LOGNAME (what `getpass.getuser()` reads first): anyone can set those, and one
    agent with a shell approved a critical operation as 'alice' and then as 'bob' that way.
    """
    return user_name(os.getuid())
