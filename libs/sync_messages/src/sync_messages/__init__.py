"""sync-messages."""
