"""Shopify simulator: the Admin GraphQL API subset our connector uses, and webhooks."""

from .schema import API_VERSION
from .simulator import ShopifySimulator, ThrottleBucket
from .webhooks import TOPICS

__all__ = ["API_VERSION", "TOPICS", "ShopifySimulator", "ThrottleBucket"]
