"""`operate-mcp` (and `python -m operate_mcp`): `serve` goes straight to the server; the rest to cli.py.

A client starts `operate-mcp serve` and waits for its tool list; the CLI's other commands import most
of the project at the top of cli.py, so `serve` takes a shorter way that imports none of it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from operate_mcp.errors import OperateError


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] != ["serve"]:
        # lazy: every other command loads cli.py and with it most of the project; see the docstring
        from operate_mcp.cli import main as cli_main

        return cli_main(args)
    # lazy: kept out of the module so `python -m operate_mcp <other command>` does not load it
    from operate_mcp.server.serve import add_serve_arguments, serve

    parser = argparse.ArgumentParser(prog="operate-mcp serve", description="run the MCP server (stdio by default)")
    add_serve_arguments(parser)
    try:
        return serve(parser.parse_args(args[1:]))
    except OperateError as exc:
        print(f"operate-mcp: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
