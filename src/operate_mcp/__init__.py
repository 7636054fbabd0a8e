"""operate-mcp: operate Kubernetes applications safely from an AI agent, over MCP."""

__version__ = "0.1.0"
