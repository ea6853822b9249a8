"""Use cases: plain async functions over a unit of work (no FastAPI imports)."""
