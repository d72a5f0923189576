"""Chat-history routes, with the AWS GenAI Gateway's shapes (docs/conversations.md).

For a session's owners (the calling key, or another key of its user):
``POST /chat-history {"session_id"}`` → ``{"messages": [...]}`` in OpenAI's chat format;
``POST /bedrock/chat-history`` → ``{"messages": [...], "system": [...]}`` in Converse's;
``POST /session-ids {}`` → ``{"session_ids": [...]}``, the calling key's sessions. Errors are in
the route's own format (OpenAI's, or Bedrock's for ``/bedrock/…``) and never carry any of a
session's content. The admins' routes are in ``edge/admin/chat_history.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest
from tollgate.conversations import History, Transcript
from tollgate.dialects.bedrock import converse as bedrock_converse
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.inference import ErrorRenderer, error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest
from tollgate.store.conversations import SessionRecord

Authenticate = Callable[[Request], Awaitable[Principal]]
Json = dict[str, Any]


def openai_messages(transcript: Transcript) -> list[Any]:
    rendered = openai_chat.render_request(
        ChatRequest("", transcript.messages, transcript.system), "", drop_params=True
    )
    messages: list[Any] = rendered["messages"]  # type: ignore[assignment]
    return messages


def converse_history(transcript: Transcript) -> Json:
    rendered = bedrock_converse.render_request(
        ChatRequest("", transcript.messages, transcript.system), "", drop_params=True
    )
    return {"messages": rendered["messages"], "system": rendered.get("system", [])}


def session_summary(session: SessionRecord) -> Json:
    return {
        "session_id": session.id,
        "key": session.owner_key,
        "user_id": session.owner_user,
        "model": session.model,
        "exchanges": session.exchanges,
        "created_at": _iso(session.created_at),
        "updated_at": _iso(session.updated_at),
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _json(payload: object) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def _session_id(request: Request) -> str:
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise InvalidRequest("the request body is not valid JSON") from None
    session_id = body.get("session_id") if isinstance(body, dict) else None
    if not isinstance(session_id, str) or not session_id:
        raise InvalidRequest("'session_id' is required", param="session_id")
    return session_id


class ChatHistoryRoutes:
    def __init__(self, history: History, authenticate: Authenticate) -> None:
        self._history = history
        self._authenticate = authenticate

    def routes(self) -> list[Route]:
        return [
            Route("/chat-history", self.openai_history, methods=["POST"], include_in_schema=False),
            Route("/bedrock/chat-history", self.bedrock_history, methods=["POST"], include_in_schema=False),
            Route("/session-ids", self.session_ids, methods=["POST"], include_in_schema=False),
        ]

    async def _answer(
        self, request: Request, render: ErrorRenderer, build: Callable[[Principal], Awaitable[object]]
    ) -> Response:
        try:
            principal = await self._authenticate(request)
            return _json(await build(principal))
        except GatewayError as exc:
            return error_response(render, exc)
        except Exception as exc:
            return internal_error(render, exc, None)

    async def openai_history(self, request: Request) -> Response:
        async def build(principal: Principal) -> object:
            transcript = await self._history.transcript(principal, await _session_id(request))
            return {"messages": openai_messages(transcript)}

        return await self._answer(request, openai_chat.render_error, build)

    async def bedrock_history(self, request: Request) -> Response:
        async def build(principal: Principal) -> object:
            transcript = await self._history.transcript(principal, await _session_id(request))
            return converse_history(transcript)

        return await self._answer(request, bedrock_converse.render_error, build)

    async def session_ids(self, request: Request) -> Response:
        async def build(principal: Principal) -> object:
            return {"session_ids": await self._history.session_ids(principal)}

        return await self._answer(request, openai_chat.render_error, build)
