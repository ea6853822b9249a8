"""pytest fixtures for the Zuora sandbox (filled in by the sandbox package)."""
