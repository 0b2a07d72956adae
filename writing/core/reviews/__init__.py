"""Feedback as a core service (``Reviews``): reports on served answers, the blocks they put in place,
and an admin's decisions on them. The stores are ports (``writing.core.ports``); the HTTP routes
(``writing.api.routes.feedback``) map its outcomes to responses."""

from writing.core.reviews.actions import Resolution
from writing.core.reviews.blocks import apply_block, block_of, refresh_blocklist
from writing.core.reviews.limits import RateLimiter
from writing.core.reviews.service import EXPORT_PAGE, Ack, Reporter, Resolved, Reviews, public

__all__ = [
    "EXPORT_PAGE",
    "Ack",
    "RateLimiter",
    "Reporter",
    "Resolution",
    "Resolved",
    "Reviews",
    "apply_block",
    "block_of",
    "public",
    "refresh_blocklist",
]
