"""sync-engine."""
