"""Static system prompts, shipped inside the package (prompts/ in the repo, operate_mcp/prompts in the wheel)."""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources
from pathlib import Path

_REPO_PROMPTS = Path(__file__).resolve().parents[2] / "prompts"


@cache
def load_prompt(name: str) -> str:
    """The prompt file's exact text: it is the cacheable prefix, so it is never templated."""
    packaged = resources.files("operate_mcp").joinpath("prompts", f"{name}.md")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = _REPO_PROMPTS / f"{name}.md"
    if source.is_file():
        return source.read_text(encoding="utf-8")
    raise FileNotFoundError(f"prompt {name!r} is missing from the package; reinstall operate-mcp")


def prompt_sha256(name: str) -> str:
    return hashlib.sha256(load_prompt(name).encode()).hexdigest()
