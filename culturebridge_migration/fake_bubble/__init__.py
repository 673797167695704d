"""A local stand-in for Bubble's Data API."""

from culturebridge_migration.fake_bubble.server import FakeBubble, RequestRecord

__all__ = ["FakeBubble", "RequestRecord"]
