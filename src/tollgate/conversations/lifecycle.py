"""``Conversations``: the gateway's conversation step, run before admission so that a rendered
prompt and a session's history count toward the request's token estimate, limits and spend
like any other input.

``open(call)`` returns the exchange the gateway carries through the request: a managed-prompt
ARN is rendered first (its messages replace the client's), then a chat-history session is
started (``enable_history``) or continued (``session_id``: its stored turns go before the new
messages). A continuation the caller may not use is refused here, so it never reaches an
upstream. Requests with none of these pay one attribute check.
"""

from __future__ import annotations

from dataclasses import replace

from tollgate.call import Call
from tollgate.canonical import ChatRequest
from tollgate.conversations.exchange import Passing, Recorded
from tollgate.conversations.history import History
from tollgate.conversations.prompt_resolver import PromptResolver
from tollgate.conversations.prompts import looks_like_prompt
from tollgate.errors import InvalidRequest


class Conversations:
    def __init__(self, history: History, prompts: PromptResolver) -> None:
        self.history = history
        self.prompts = prompts

    async def open(self, call: Call) -> Passing | Recorded:
        request = call.request
        if not isinstance(request, ChatRequest) or not (
            request.enable_history
            or request.session_id is not None
            or request.prompt_variables is not None
            or looks_like_prompt(request.model)
        ):
            return Passing(call)
        if looks_like_prompt(request.model):
            request = await self.prompts.apply(call.principal, request)
        elif request.prompt_variables is not None:
            raise InvalidRequest(
                "promptVariables apply only to a managed prompt: use its ARN as the model",
                param="promptVariables",
            )
        if not request.enable_history and request.session_id is None:
            return Passing(_with_request(call, request))
        if not request.messages:
            raise InvalidRequest("a chat-history request needs at least one new message", param="messages")
        principal = call.principal
        if request.session_id is not None:
            past = await self.history.continuation(principal, request.session_id)
            expanded = replace(
                request,
                messages=(*past.messages, *request.messages),
                system=request.system or past.system,
            )
            sent = _with_request(call, expanded)
            return Recorded(sent, self.history, past.session.id, request.messages, started=False)
        session = await self.history.start(principal, request.model)
        return Recorded(
            _with_request(call, request), self.history, session.id, request.messages, started=True
        )


def _with_request(call: Call, request: ChatRequest) -> Call:
    """The call carrying the request as it goes upstream. Anything derived from the client's
    request alone must be dropped here: the edge's input-token estimate is redone on the expanded
    request, so a session's history counts toward the caller's limits."""
    return replace(call, request=request, input_tokens=None)


class NoConversations:
    """The step for a gateway built without chat history and prompts: refuses their switches."""

    async def open(self, call: Call) -> Passing:
        request = call.request
        if isinstance(request, ChatRequest) and (
            request.enable_history or request.session_id is not None or request.prompt_variables is not None
        ):
            raise InvalidRequest("chat history and managed prompts are not enabled on this gateway")
        return Passing(call)
