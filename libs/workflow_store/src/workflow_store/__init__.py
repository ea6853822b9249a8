"""workflow-store."""
