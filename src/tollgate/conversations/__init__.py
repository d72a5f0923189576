"""Conversations: server-side chat history by session and Amazon Bedrock managed prompts, one
step of the gateway's lifecycle (docs/conversations.md).

``lifecycle.Conversations`` is what the gateway calls; ``history`` keeps sessions (over the
``store.conversations`` protocol), ``prompt_resolver`` and ``prompts`` render managed prompts,
``turns`` stores canonical messages, ``assembly`` rebuilds streamed answers, ``ownership`` says
who may use a session. May import ``call``, ``auth``, ``canonical``, ``config``, ``dialects``,
``errors``, ``policy``, ``routing`` and ``store``.
"""

from __future__ import annotations

from tollgate.conversations.exchange import SESSION_HEADER, Passing, Recorded
from tollgate.conversations.history import History, HistorySettings, Transcript
from tollgate.conversations.lifecycle import Conversations
from tollgate.conversations.prompt_resolver import PromptCacheSettings, PromptResolver, PromptSource

__all__ = [
    "SESSION_HEADER", "Conversations", "History", "HistorySettings", "Passing", "PromptCacheSettings",
    "PromptResolver", "PromptSource", "Recorded", "Transcript",
]
