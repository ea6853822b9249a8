from __future__ import annotations

from event_bus.testing import kafka_bootstrap, kafka_settings, local_kafka  # noqa: F401
