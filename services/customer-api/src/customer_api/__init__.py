"""customer-api: the FastAPI customer API (customers, synced workflows, sync triggers/history).

Build the app with :func:`customer_api.app.create_app`; run it with ``customer-api``.
"""

__version__ = "0.1.0"
