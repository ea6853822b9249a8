"""zuora-client."""
