"""`python -m operate_mcp` is the `operate-mcp` command."""

from operate_mcp.cli import main

raise SystemExit(main())
