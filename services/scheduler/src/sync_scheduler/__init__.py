"""sync-scheduler."""
