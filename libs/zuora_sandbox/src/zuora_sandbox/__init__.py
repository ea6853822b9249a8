"""zuora-sandbox."""
