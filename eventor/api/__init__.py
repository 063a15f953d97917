"""The HTTP layer: routes that parse, call the core, and render. No business rules live here."""

from .app import create_app

__all__ = ["create_app"]
