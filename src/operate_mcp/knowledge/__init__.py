"""Knowledge: patterns (how we do things), policies (what is not allowed, enforced in code) and cluster
capabilities, stored in Qdrant and embedded into every analysis. Start at `base.KnowledgeBase`.

Nothing is imported here, so `import operate_mcp.knowledge` stays free: Qdrant, CEL and the
embedding model load on first use.
"""
