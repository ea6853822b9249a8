"""workflow-store: the database of the Zuora workflow sync.

Models, Alembic migrations (``workflow_store.migrate``), secret encryption
(``workflow_store.crypto``), settings, engine helpers and the customers repository.
"""

from .crypto import SecretBox
from .db import create_engine, create_session_factory
from .errors import (
    ConfigurationError,
    CustomerExistsError,
    CustomerNotFoundError,
    InvalidEncryptionKeyError,
    SecretDecryptionError,
    StoreError,
)
from .models import (
    Base,
    Customer,
    OutboxMessage,
    ProcessedMessage,
    StoredWorkflow,
    SyncRun,
)
from .settings import StoreSettings

__all__ = [
    "Base",
    "ConfigurationError",
    "Customer",
    "CustomerExistsError",
    "CustomerNotFoundError",
    "InvalidEncryptionKeyError",
    "OutboxMessage",
    "ProcessedMessage",
    "SecretBox",
    "SecretDecryptionError",
    "StoreError",
    "StoreSettings",
    "StoredWorkflow",
    "SyncRun",
    "create_engine",
    "create_session_factory",
]
