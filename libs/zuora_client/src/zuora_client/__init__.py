"""Async Zuora REST client for Workflow definitions (see README.md)."""

from ._auth import TokenCache, default_token_cache, expiry_margin
from ._client import USER_AGENT, ClientStats, RequestEvent, RequestHook, ZuoraClient
from ._definition_models import (
    CanvasPosition,
    ExportedWorkflow,
    WorkflowExport,
    WorkflowLinkage,
    WorkflowTask,
    WorkflowVersionInfo,
)
from ._errors import (
    AuthenticationError,
    BadRequestError,
    BaseUrlNotAllowedError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransportError,
    ZuoraError,
)
from ._hosts import OFFICIAL_BASE_URLS, check_base_url
from ._models import Workflow, WorkflowPage, WorkflowVersion, ZuoraCredentials, parse_timestamp
from ._paging import MAX_PAGE_LENGTH
from ._retry import RETRYABLE_STATUSES, RetryPolicy, retry_after_seconds

__all__ = [
    "MAX_PAGE_LENGTH",
    "OFFICIAL_BASE_URLS",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "AuthenticationError",
    "BadRequestError",
    "BaseUrlNotAllowedError",
    "CanvasPosition",
    "ClientStats",
    "ExportedWorkflow",
    "InvalidResponseError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestEvent",
    "RequestHook",
    "RetryPolicy",
    "ServerError",
    "TokenCache",
    "TransportError",
    "Workflow",
    "WorkflowExport",
    "WorkflowLinkage",
    "WorkflowPage",
    "WorkflowTask",
    "WorkflowVersion",
    "WorkflowVersionInfo",
    "ZuoraClient",
    "ZuoraCredentials",
    "ZuoraError",
    "check_base_url",
    "default_token_cache",
    "expiry_margin",
    "parse_timestamp",
    "retry_after_seconds",
]
