"""``GET /guardrails/list`` and ``POST /guardrails/apply_guardrail``, LiteLLM's guardrail routes.

Both take any authenticated caller, as LiteLLM's do. The list shows each configured guardrail's
``litellm_params`` without credentials. ``apply_guardrail`` runs one guardrail on a text without a
model call: ``{"guardrail_name", "text", "input_type": "request" | "response"}`` →
``{"response_text"}`` (masked when the guardrail anonymized); a block is the 400 a chat request
would get. Errors are in OpenAI's format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.auth.principal import Principal
from tollgate.call import GuardrailTrail
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.inference import error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest
from tollgate.guardrails import APPLIED_HEADER, Guardrails

Authenticate = Callable[[Request], Awaitable[Principal]]


def _field(body: dict[str, object], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{name}' must be a non-empty string", param=name)
    return value


def guardrail_routes(guardrails: Guardrails, authenticate: Authenticate) -> list[Route]:
    async def listing(request: Request) -> Response:
        try:
            await authenticate(request)
        except GatewayError as exc:
            return error_response(openai_chat.render_error, exc)
        return Response(orjson.dumps(guardrails.listing()), media_type="application/json")

    async def apply(request: Request) -> Response:
        try:
            principal = await authenticate(request)
            try:
                body = orjson.loads(await request.body())
            except orjson.JSONDecodeError as exc:
                raise InvalidRequest(f"The request body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise InvalidRequest("The request body must be a JSON object.")
            input_type = _field(body, "input_type", "request")
            if input_type not in ("request", "response"):
                raise InvalidRequest("'input_type' must be 'request' or 'response'", param="input_type")
            trail = GuardrailTrail()
            text = await guardrails.apply(
                _field(body, "guardrail_name"), _field(body, "text"),
                "response" if input_type == "response" else "request", trail, reveal=principal.is_admin,
            )  # fmt: skip
            headers = {APPLIED_HEADER: ",".join(trail.applied)} if trail.runs else {}
            body = orjson.dumps({"response_text": text})
            return Response(body, media_type="application/json", headers=headers)
        except GatewayError as exc:
            return error_response(openai_chat.render_error, exc)
        except Exception as exc:
            return internal_error(openai_chat.render_error, exc, None)

    return [
        Route("/guardrails/list", listing, methods=["GET"]),
        Route("/guardrails/apply_guardrail", apply, methods=["POST"]),
    ]
