"""The HTTP API: Graph-compatible routes, error envelope, OData options, $metadata."""

from .app import create_app

__all__ = ["create_app"]
