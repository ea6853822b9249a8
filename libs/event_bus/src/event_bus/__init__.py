"""Kafka plumbing: settings, topics, broker/producer factories, the transactional outbox and its
relay, and a launcher for the local Kafka-compatible broker (Tansu).

Submodules are imported explicitly (``event_bus.outbox`` needs the database models,
``event_bus.testing`` needs pytest); this package root re-exports only the light pieces.
"""

from event_bus.broker import KafkaPublisher, make_broker, make_producer
from event_bus.settings import KafkaSettings
from event_bus.topics import ensure_topics

__all__ = ["KafkaPublisher", "KafkaSettings", "ensure_topics", "make_broker", "make_producer"]
