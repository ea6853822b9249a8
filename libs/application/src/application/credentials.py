"""Checking Zuora client credentials with a real token request (the adapter of
:class:`application.ports.CredentialsChecker`)."""

from __future__ import annotations

from collections.abc import Iterable

from zuora_client import (
    MAX_RETRY_AFTER_SECONDS,
    AuthenticationError,
    HostGuards,
    HostLimits,
    PermissionDeniedError,
    TokenCache,
    TransportError,
    ZuoraClient,
    ZuoraCredentials,
    ZuoraError,
)
from zuora_client import BaseUrlNotAllowedError as ClientBaseUrlNotAllowedError

from application.errors import BaseUrlNotAllowed, CredentialsRejected, ZuoraUnavailable

__all__ = ["ZuoraCredentialsChecker"]


def _scrubbed(text: str, credentials: ZuoraCredentials) -> str:
    secret = credentials.client_secret.get_secret_value()
    return text.replace(secret, "[REDACTED]") if secret else text


class ZuoraCredentialsChecker:
    """Requests a fresh OAuth token from the tenant; a short timeout and a single retry."""

    def __init__(
        self,
        *,
        allowed_base_urls: Iterable[str] = (),
        timeout: float = 10.0,
        token_requests_per_minute: float = HostLimits.token_requests_per_minute,
    ) -> None:
        self._allowed = tuple(allowed_base_urls)
        self._timeout = timeout
        # One limiter and breaker per Zuora host for all checks of this process (audit A8).
        self._host_guards = HostGuards(
            HostLimits(token_requests_per_minute=token_requests_per_minute)
        )

    async def __call__(self, credentials: ZuoraCredentials) -> None:
        try:
            client = ZuoraClient(
                credentials,
                allowed_base_urls=self._allowed,
                timeout=self._timeout,
                max_retries=1,
                backoff_base=0.2,
                backoff_cap=1.0,
                max_retry_wait=2.0,
                token_cache=TokenCache(),  # a throw-away cache: the token is never used
                host_guards=self._host_guards,
            )
        except ClientBaseUrlNotAllowedError:
            raise BaseUrlNotAllowed from None
        try:
            async with client:
                await client.check_credentials()
        except (AuthenticationError, PermissionDeniedError) as exc:
            raise CredentialsRejected(
                "Zuora refused these client credentials (check client_id, client_secret, "
                f"entity_id and base_url): {_scrubbed(exc.message, credentials)}"
            ) from None
        except TransportError:
            raise ZuoraUnavailable(
                "Zuora could not be reached to check the credentials; try again later, or "
                "create the customer with validate_credentials=false",
                retry_after=30,
            ) from None
        except ZuoraError as exc:
            raise ZuoraUnavailable(
                "Zuora answered the credentials check with an error "
                f"({_scrubbed(exc.message, credentials)}); try again later",
                bad_response=True,
                # The client clamps hints to a day; min() keeps int() finite whatever the source.
                retry_after=(
                    int(min(exc.retry_after, MAX_RETRY_AFTER_SECONDS)) if exc.retry_after else None
                ),
            ) from None
