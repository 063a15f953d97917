"""Eventor: a durable, strictly ordered HTTP event store with webhook subscriptions."""

__version__ = "0.1.0"
