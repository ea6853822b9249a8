"""sync-worker."""
