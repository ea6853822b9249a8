"""Benchmarks of Zuora Workflow Sync (issue 6): `make bench`, `make bench-smoke`."""
