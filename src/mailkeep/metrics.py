"""Process metrics in Prometheus' format, served by the HTTP listener at ``/metrics``.

Counters live here, one registry per process; protocol code increments them. Gauges that
describe the store (accounts, messages, octets) are read from the store when scraped.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

REGISTRY = CollectorRegistry(auto_describe=True)

CONNECTIONS = Counter(
    "mailkeep_connections",
    "Connections accepted, by listener.",
    ["listener"],
    registry=REGISTRY,
)
OPEN_CONNECTIONS = Gauge("mailkeep_open_connections", "Connections open now.", registry=REGISTRY)
DELIVERIES = Counter(
    "mailkeep_deliveries",
    "Recipients a message was delivered (or refused) to, by outcome.",
    ["status"],
    registry=REGISTRY,
)
LOGINS = Counter(
    "mailkeep_logins",
    "Authentication attempts, by result.",
    ["result"],
    registry=REGISTRY,
)
ACCOUNTS = Gauge("mailkeep_accounts", "Accounts in the store.", registry=REGISTRY)
STORED_MESSAGES = Gauge("mailkeep_messages", "Messages in the store.", registry=REGISTRY)
STORED_OCTETS = Gauge(
    "mailkeep_stored_octets", "Octets of mail stored (sum of message sizes).", registry=REGISTRY
)
