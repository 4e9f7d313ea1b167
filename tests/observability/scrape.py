"""Reading a ``/metrics`` body in tests (one sample's value, by name and labels), and a
PostgreSQL URL nothing answers at."""

from __future__ import annotations

import socket

from prometheus_client.parser import text_string_to_metric_families


def sample_value(body: bytes | str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}``; None when the body has no such sample."""
    text = body.decode() if isinstance(body, bytes) else body
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def family_names(body: bytes | str) -> set[str]:
    """The metric families the body declares."""
    text = body.decode() if isinstance(body, bytes) else body
    return {family.name for family in text_string_to_metric_families(text)}


def closed_port_postgres_url() -> str:
    """A PostgreSQL URL on a loopback port nobody listens on (refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"
