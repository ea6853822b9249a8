"""Write the API's OpenAPI document (``make docs``): ``python -m customer_api.openapi OUT``.

The app is built with placeholder settings (nothing connects, no key is read from the
environment), so the document depends on the code only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from workflow_store.crypto import SecretBox
from workflow_store.settings import StoreSettings

from customer_api.app import create_app
from customer_api.settings import ApiSettings

__all__ = ["main", "openapi_document"]


def openapi_document() -> dict[str, Any]:
    store = StoreSettings.model_validate(
        {
            "APP_ENV": "docs",
            "DATABASE_URL": "sqlite+aiosqlite:///:memory:",
            "ENCRYPTION_KEYS": SecretBox.generate_key(),
        }
    )
    settings = ApiSettings.model_validate(
        {"store": store, "API_KEYS": "openapi-docs-only", "OUTBOX_RELAY_ENABLED": False}
    )
    document: dict[str, Any] = create_app(settings).openapi()
    return document


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else "docs/openapi.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n")
    print(f"OpenAPI document written to {out}", file=sys.stderr)  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
