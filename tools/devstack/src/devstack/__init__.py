"""The embedded stack behind `make run`."""
