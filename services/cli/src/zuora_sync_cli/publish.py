"""Publishing sync commands to Kafka (the same verbs without --inline)."""

from __future__ import annotations

import argparse

from zuora_sync_cli.context import CliContext
from zuora_sync_cli.errors import CliError


async def publish_sync(ctx: CliContext, args: argparse.Namespace) -> int:
    raise CliError(
        "publishing sync commands to Kafka is not available yet; use --inline", exit_code=2
    )
