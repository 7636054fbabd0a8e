"""The guide's console examples are executed, so the documentation cannot drift from the code."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guide.md"
EXAMPLE = re.compile(r"^\$ (operate-mcp check-command .+)\n(.+)$", re.M)


def test_guide_check_command_examples_print_what_the_guide_says():
    examples = EXAMPLE.findall(GUIDE.read_text())
    assert len(examples) >= 2
    for command, expected in examples:
        argv = shlex.split(command)
        out = subprocess.run([sys.executable, "-m", "operate_mcp", *argv[1:]], capture_output=True, text=True)
        assert out.stdout.strip() == expected.strip(), command


def test_check_command_exit_code_marks_forbidden():
    ok = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "check-command", "--", "kubectl", "get", "pods"],
        capture_output=True,
        text=True,
    )
    bad = subprocess.run(
        [sys.executable, "-m", "operate_mcp", "check-command", "--", "kubectl", "exec", "x"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and '"class": "read"' in ok.stdout
    assert bad.returncode == 3 and '"class": "forbidden"' in bad.stdout
