"""docs/search.md is executed: every example query compiles, and the error examples print what the page says."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from operate_mcp.records.cli import add_records_parsers
from operate_mcp.records.query import compile_query

DOC = Path(__file__).resolve().parents[3] / "docs" / "search.md"
TABLE_QUERY = re.compile(r"^\| `([^`]+)` \|", re.M)
ERROR_EXAMPLE = re.compile(r"^\$ (operate-mcp runs search \"[^\n]+)\n((?:(?!\$ |```).*\n)+)", re.M)


def test_every_example_query_in_the_table_compiles() -> None:
    queries = TABLE_QUERY.findall(DOC.read_text())
    assert len(queries) >= 20
    for query in queries:
        compile_query(query)


def test_error_examples_print_what_the_page_says(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    examples = ERROR_EXAMPLE.findall(DOC.read_text())
    errors = [(cmd, out) for cmd, out in examples if out.startswith("error:")]
    assert len(errors) >= 3
    for command, expected in errors:
        parser = argparse.ArgumentParser(prog="operate-mcp")
        add_records_parsers(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args([*shlex.split(command)[1:], "--data-dir", str(tmp_path)])
        assert args.func(args) == 2, command
        assert capsys.readouterr().err == expected, command
