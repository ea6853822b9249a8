"""The adapters of the sync use case's ports (:mod:`sync_engine.ports`): the store over
SQLAlchemy (PostgreSQL, or SQLite for embedded runs), Zuora over ``zuora_client``, the customer
lock over advisory locks (a lock file on SQLite)."""

from sync_engine.adapters.lock import DatabaseCustomerLock
from sync_engine.adapters.sql import SqlSyncStore
from sync_engine.adapters.zuora import ClientFactory, HttpZuoraGateway

__all__ = ["ClientFactory", "DatabaseCustomerLock", "HttpZuoraGateway", "SqlSyncStore"]
