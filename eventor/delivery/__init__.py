"""The subscription engine: one loop per active subscription, delivering webhooks in order."""

from .engine import DeliveryEngine

__all__ = ["DeliveryEngine"]
