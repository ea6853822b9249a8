"""``customer-api``: run the API with uvicorn (configuration from the environment)."""

from __future__ import annotations

import sys

import uvicorn
from observability.logging import configure_logging
from workflow_store.errors import ConfigurationError

from customer_api.app import create_app
from customer_api.settings import ApiSettings

__all__ = ["main"]


def main() -> None:
    settings = ApiSettings()
    configure_logging("customer-api", settings=settings.log)
    try:
        settings.check_process_model()
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"customer-api: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
    if settings.api_workers > 1:
        # Several processes share the port; each builds its own app (and outbox relay: relays
        # take turns through an advisory lock, so that is safe).
        uvicorn.run(
            "customer_api.app:create_app",
            factory=True,
            workers=settings.api_workers,
            host=settings.api_host,
            port=settings.api_port,
            log_level=settings.log.level.lower(),
            log_config=None,
            proxy_headers=True,
            # uvicorn kills a worker that does not answer its supervisor's ping within this
            # time; the default (5 s) is shorter than an import-heavy start on 2 busy cores,
            # which then restarts workers for ever.
            timeout_worker_healthcheck=60,
        )
        return
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log.level.lower(),
        log_config=None,  # uvicorn's loggers propagate to our handler (JSON or text)
        proxy_headers=True,
    )


if __name__ == "__main__":
    main()
