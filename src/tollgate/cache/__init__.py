"""The response cache: a step of the gateway's lifecycle that answers a repeated request from a
stored answer, at no cost, before anything reaches an upstream (docs/cache.md).

``keys`` derives the tenant-scoped key from the canonical request, ``entries`` turns answers into
bytes and back, ``streams`` assembles a finished stream into an answer and replays an answer as a
stream, and ``responses.ResponseCache`` is the step ``gateway.py`` calls. The entries live in a
``store.cache.CacheStore`` (in-process or Redis).
"""

from tollgate.cache.responses import CacheObserver, ChatLookup, EmbeddingLookup, Hit, ResponseCache
from tollgate.cache.streams import replay

__all__ = ["CacheObserver", "ChatLookup", "EmbeddingLookup", "Hit", "ResponseCache", "replay"]
