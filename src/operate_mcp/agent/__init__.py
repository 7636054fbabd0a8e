"""The model loop: a Provider (one model turn at a time) and a Toolset (the tools it may call), both
handed in by the workflow that runs it. Nothing here knows Kubernetes."""
