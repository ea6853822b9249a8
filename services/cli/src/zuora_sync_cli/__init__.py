"""zuora-sync-cli."""
