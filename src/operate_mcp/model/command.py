"""The command noun: a kubectl argv as proposed and approved, its class, and the digest approval binds to."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class CommandClass(StrEnum):
    """What running a command does to the cluster; forbidden ones are never shown for approval."""

    READ = "read"
    DRY_RUN = "dry-run"
    MUTATING = "mutating"
    FORBIDDEN = "forbidden"


class Classification(BaseModel):
    """The verdict on one command line; serialised as ``{"class": ..., "reason": ...}``."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, validate_by_alias=True)

    command_class: CommandClass = Field(alias="class")
    reason: str


def shell_quote(argv: Sequence[str]) -> str:
    """The command as a person would type it; for display only, never executed through a shell."""
    return shlex.join(list(argv))


class ProposedCommand(BaseModel):
    """A command as proposed and approved: exact argv, optional manifest on stdin, and why."""

    argv: list[str] = Field(description="the kubectl command as an argument list, argv[0] == 'kubectl'")
    stdin: str | None = Field(default=None, description="a manifest fed to `-f -`, or null")
    description: str = Field(description="what the command does and why, for the person approving it")

    @property
    def display(self) -> str:
        """Shell-quoted for people, with a note when a manifest is fed on stdin."""
        shown = shell_quote(self.argv)
        if self.stdin is None:
            return shown
        lines = len(self.stdin.splitlines())
        return f"{shown}  # with a {lines}-line manifest on stdin"


def command_digest(commands: Sequence[ProposedCommand]) -> str:
    """SHA-256 over the exact argv and stdin of every command, in order; approval binds to it.

    Descriptions are left out: rewording why does not change what runs.
    """
    canonical = json.dumps(
        [{"argv": list(c.argv), "stdin": c.stdin} for c in commands],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()
