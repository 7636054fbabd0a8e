"""What several benchmarks share: the bare one-tool MCP server they compare start-up with, and the
tainted fake nodes that hold a thousand pods on a bed cluster without touching the bed's own nodes."""

from __future__ import annotations

import textwrap

BARE_SERVER = textwrap.dedent(
    """\
    from mcp.server.mcpserver import MCPServer

    mcp = MCPServer(name="bare")


    @mcp.tool()
    def ping() -> str:
        \"\"\"Answer pong.\"\"\"
        return "pong"


    mcp.run("stdio")
    """
)


def nodes_manifest(count: int, prefix: str = "bench-node") -> str:
    """Fake kwok nodes, tainted so nothing but the benchmark's own pods land there."""
    docs = []
    for i in range(count):
        docs.append(
            textwrap.dedent(f"""\
            apiVersion: v1
            kind: Node
            metadata:
              name: {prefix}-{i}
              annotations: {{kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}}
              labels: {{kubernetes.io/hostname: {prefix}-{i}, operate-mcp.dev/bench: "true", type: kwok}}
            spec:
              taints: [{{key: operate-mcp.dev/bench, value: "true", effect: NoSchedule}}]
            status:
              addresses: [{{address: 127.0.0.1, type: InternalIP}}, {{address: {prefix}-{i}, type: Hostname}}]
              allocatable: {{cpu: "32", memory: 128Gi, pods: "110"}}
              capacity: {{cpu: "32", memory: 128Gi, pods: "110"}}
            """)
        )
    return "---\n".join(docs)
