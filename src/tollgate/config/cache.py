"""``litellm_settings.cache_params``: the response cache's settings, typed (docs/cache.md).

LiteLLM's keys: ``type`` (``redis`` | ``local``; LiteLLM's other back ends refuse to start),
``host``/``port``/``password``/``username``/``url``/``ssl`` for Redis (without them the router's
Redis settings or ``REDIS_URL``/``REDIS_HOST`` are used), ``namespace``, ``ttl`` and the per-type
``default_in_memory_ttl``/``default_in_redis_ttl``, ``mode`` (``default_on`` | ``default_off``),
``supported_call_types``, ``socket_timeout`` and ``max_connections``. One tollgate key: ``scope``
(``tenant``, the default, or ``gateway`` to share answers across tenants).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_TTL = 3600.0  # seconds; LiteLLM leaves Redis entries without expiry, tollgate bounds them

CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})
EMBEDDING_CALL_TYPES = frozenset({"embedding", "aembedding"})
# LiteLLM call types tollgate serves no API for: listing them is harmless, there is nothing to cache.
OTHER_CALL_TYPES = frozenset(
    {
        "text_completion", "atext_completion", "transcription", "atranscription", "responses",
        "aresponses", "speech", "aspeech", "rerank", "arerank", "moderation", "amoderation",
        "image_generation", "aimage_generation",
    }
)  # fmt: skip


class CacheParams(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    type: Literal["local", "redis"] = "redis"  # LiteLLM's proxy defaults to Redis
    host: str | None = None
    port: int | None = None
    password: str | None = None
    username: str | None = None
    url: str | None = None
    ssl: bool = False
    namespace: str | None = None
    ttl: float | None = Field(default=None, gt=0)
    default_in_memory_ttl: float | None = Field(default=None, gt=0)
    default_in_redis_ttl: float | None = Field(default=None, gt=0)
    mode: Literal["default_on", "default_off"] = "default_on"
    supported_call_types: tuple[str, ...] = ("acompletion", "aembedding")
    socket_timeout: float = Field(default=0.5, gt=0)  # a slow Redis must not slow every request
    max_connections: int | None = Field(default=None, ge=1)
    scope: Literal["tenant", "gateway"] = "tenant"

    @field_validator("type", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value  # AWS's guide writes "Redis"

    @property
    def chat(self) -> bool:
        return not CHAT_CALL_TYPES.isdisjoint(self.supported_call_types)

    @property
    def embeddings(self) -> bool:
        return not EMBEDDING_CALL_TYPES.isdisjoint(self.supported_call_types)

    @property
    def default_ttl(self) -> float:
        per_type = self.default_in_redis_ttl if self.type == "redis" else self.default_in_memory_ttl
        return self.ttl or per_type or DEFAULT_TTL


def cache_param_findings(params: CacheParams) -> list[str]:
    """Paths under ``cache_params`` tollgate does not act on (reported as unknown keys)."""
    found = [f"cache_params.{key}" for key in sorted(params.model_extra or {})]
    known = CHAT_CALL_TYPES | EMBEDDING_CALL_TYPES | OTHER_CALL_TYPES
    found += [
        f"cache_params.supported_call_types[{i}] ({name})"
        for i, name in enumerate(params.supported_call_types)
        if name not in known
    ]
    return found
