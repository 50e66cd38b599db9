"""Moved to :mod:`fourteen.ami` (production code now); re-exported so existing tests keep importing here."""

from fourteen.ami import (
    AmiClient,
    AmiError,
    AmiTimeout,
    Message,
    Predicate,
    Subscription,
    event_named,
    linked_to,
    user_event,
)

__all__ = [
    "AmiClient",
    "AmiError",
    "AmiTimeout",
    "Message",
    "Predicate",
    "Subscription",
    "event_named",
    "linked_to",
    "user_event",
]
