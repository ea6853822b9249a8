"""Async Zuora REST client for Workflow definitions (see README.md)."""

from ._auth import TokenCache, default_token_cache, expiry_margin, token_key
from ._client import USER_AGENT, ZuoraClient
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
    CircuitOpenError,
    DeadlineExceededError,
    InvalidResponseError,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    ZuoraError,
)
from ._guards import (
    CircuitBreaker,
    HostGuards,
    HostLimits,
    TokenRateLimiter,
    default_host_guards,
)
from ._hosts import OFFICIAL_BASE_URLS, check_base_url
from ._models import Workflow, WorkflowPage, WorkflowVersion, ZuoraCredentials, parse_timestamp
from ._paging import MAX_PAGE_LENGTH
from ._retry import MAX_RETRY_AFTER_SECONDS, RETRYABLE_STATUSES, RetryPolicy, retry_after_seconds
from ._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_REQUEST_DEADLINE,
    ClientStats,
    RequestEvent,
    RequestHook,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_REQUEST_DEADLINE",
    "MAX_PAGE_LENGTH",
    "MAX_RETRY_AFTER_SECONDS",
    "OFFICIAL_BASE_URLS",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "AuthenticationError",
    "BadRequestError",
    "BaseUrlNotAllowedError",
    "CanvasPosition",
    "CircuitBreaker",
    "CircuitOpenError",
    "ClientStats",
    "DeadlineExceededError",
    "ExportedWorkflow",
    "HostGuards",
    "HostLimits",
    "InvalidResponseError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestEvent",
    "RequestHook",
    "ResponseTooLargeError",
    "RetryPolicy",
    "ServerError",
    "TokenCache",
    "TokenRateLimiter",
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
    "default_host_guards",
    "default_token_cache",
    "expiry_margin",
    "parse_timestamp",
    "retry_after_seconds",
    "token_key",
]
