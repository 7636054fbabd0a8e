"""`operate-mcp knowledge ...` and `operate-mcp patterns` through argparse, as the main CLI wires them."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from operate_mcp.knowledge.cli import add_knowledge_parsers


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="operate-mcp")
    add_knowledge_parsers(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    code: int = args.func(args)
    return code


@pytest.fixture
def data(tmp_path, monkeypatch) -> str:
    monkeypatch.setenv("OPERATE_MCP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "200")
    return str(tmp_path)


def test_import_list_get_search_and_delete(data, capsys, monkeypatch) -> None:
    assert run("knowledge", "import", "--starter", "--format", "json") == 0
    (report,) = json.loads(capsys.readouterr().out)
    assert "pattern/keda-autoscaling" in report["unchanged"]  # first use seeded it; importing again changes nothing

    assert run("patterns", "--format", "json") == 0
    ids = [p["id"] for p in json.loads(capsys.readouterr().out)]
    assert "keda-autoscaling" in ids and "database-ha" in ids

    assert run("knowledge", "list", "--kind", "policy") == 0
    assert "no-latest-tag" in capsys.readouterr().out

    assert run("knowledge", "get", "scaling-constraints", "--kind", "policy") == 0
    out = capsys.readouterr().out
    assert out.startswith("kind: policy") and "change.replicas <= 100" in out

    assert run("knowledge", "search", "scale", "on", "kafka", "lag", "-k", "2", "--format", "json") == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["id"] == "keda-autoscaling" and len(hits) == 2

    item = "kind: pattern\nid: canary\nname: Canary\ndescription: d\nrecommendation: {summary: s}\nrationale: r\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(item))
    assert run("knowledge", "create", "-") == 0
    assert "created: pattern/canary" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(item))
    assert run("knowledge", "create", "-") == 1
    assert "already exists" in capsys.readouterr().out
    assert run("knowledge", "delete", "canary") == 0
    assert run("knowledge", "delete", "canary") == 1


def test_import_without_sources_says_what_to_give(data, capsys) -> None:
    assert run("knowledge", "import") == 2
    assert "--starter" in capsys.readouterr().out


def test_reindex_reports_model_and_backup(data, capsys) -> None:
    assert run("knowledge", "reindex", "--format", "json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "sentence-transformers/all-MiniLM-L6-v2" and report["dimension"] == 384
    assert report["counts"]["pattern"] >= 6


def test_cli_errors_speak_cli_not_mcp(data, capsys) -> None:
    """A CLI user is told the CLI command, not the MCP tool's `action=list` (issue #14, item 10)."""
    assert run("knowledge", "get", "no-such-thing", "--kind", "policy") != 0
    err = capsys.readouterr()
    said = err.err + err.out
    assert "operate-mcp knowledge list --kind policy" in said and "action=" not in said
