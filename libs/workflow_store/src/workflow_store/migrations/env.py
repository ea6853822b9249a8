"""Alembic entry point; the environment itself is ``workflow_store.migrations.environment``.

Alembic loads this file outside any package, so it imports the real module by name (which also
keeps type checkers from seeing the package twice under two names).
"""

import importlib

importlib.import_module("workflow_store.migrations.environment").run()
