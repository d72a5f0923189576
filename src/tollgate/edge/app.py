"""The ASGI application: the route table, error handlers and lifespan.

Inference routes are served by ``HotPaths`` (one dict lookup, no middleware); everything else —
the LiteLLM admin API (a FastAPI router, so its pydantic bodies are validated and documented at
/docs), health details, passthrough, metrics — lives in a full app that is built on the first
request that needs it, so start-up does not pay for FastAPI. Paths follow LiteLLM's, with and
without the ``/v1`` prefix; with ``SERVER_ROOT_PATH`` set, every route also answers under that prefix
(LiteLLM's FastAPI ``root_path``: the prefixed and the bare path both work).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.dispatch import Handler, HotPaths
from tollgate.edge.health import Health
from tollgate.edge.inference import Inference, error_response, internal_error
from tollgate.edge.limits import BodyLimit
from tollgate.errors import GatewayError, InvalidRequest, NotFound

if TYPE_CHECKING:
    from fastapi import APIRouter, FastAPI

Hook = Callable[[], Awaitable[None]]


@dataclass
class EdgeParts:
    """What the composition root hands the edge."""

    inference: Inference
    health: Health
    list_models: Callable[[Request], Awaitable[Response]]
    extra_routes: Sequence[BaseRoute] = ()
    routers: Callable[[], Sequence[APIRouter]] = tuple  # built with the full app, on first use
    on_startup: Sequence[Hook] = field(default_factory=list)
    on_shutdown: Sequence[Hook] = field(default_factory=list)
    max_body_bytes: int = 32 * 1024 * 1024  # for the full app's routes (inference reads its own)
    root_path: str = ""  # SERVER_ROOT_PATH: the prefix every route is also served under
    freeze_heap: bool = False  # a served process: see HotPaths


def create_app(parts: EdgeParts) -> ASGIApp:
    inference = parts.inference

    async def openai(request: Request) -> Response:
        return await inference.chat(request, openai_chat)

    async def anthropic(request: Request) -> Response:
        from tollgate.dialects.anthropic import messages as anthropic_messages

        return await inference.chat(request, anthropic_messages)

    async def bedrock(request: Request) -> Response:
        from tollgate.dialects.bedrock import converse as bedrock_converse

        model_id: str = request.path_params["model_id"]
        stream = request.url.path.endswith("/converse-stream")
        return await inference.chat(request, bedrock_converse, model=model_id, stream=stream)

    post: dict[str, Handler] = {}
    for prefix in ("", "/v1", "/openai", "/openai/v1"):
        post[f"{prefix}/chat/completions"] = openai
        post[f"{prefix}/embeddings"] = inference.embeddings
    for prefix in ("", "/anthropic"):
        post[f"{prefix}/v1/messages"] = anthropic
    get: dict[str, Handler] = {"/models": parts.list_models, "/v1/models": parts.list_models}
    for path in ("/health/liveliness", "/health/liveness", "/v1/health/liveliness"):
        get[path] = parts.health.liveliness
    return HotPaths(
        lambda: BodyLimit(_full_app(parts, openai), parts.max_body_bytes),
        post=post,
        get=get,
        bedrock=bedrock,
        on_startup=parts.on_startup,
        on_shutdown=parts.on_shutdown,
        root_path=parts.root_path,
        freeze_heap=parts.freeze_heap,
    )


def _full_app(parts: EdgeParts, openai: Handler) -> FastAPI:
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    app = FastAPI(
        title="tollgate",
        description="LLM gateway: OpenAI, Anthropic and Bedrock APIs; LiteLLM-compatible admin API.",
        docs_url=None,  # the web UI serves Swagger UI at / and /docs without a CDN (tollgate.ui.pages)
        redoc_url=None,
    )
    # Azure-style and engine paths carry the model in the path; they are rare, so the full app
    # serves them (the body's "model" still decides).
    for path in ("/engines/{model}/chat/completions", "/openai/deployments/{model}/chat/completions"):
        app.add_route(path, openai, methods=["POST"], include_in_schema=False)
    parts.health.mount(app)
    for route in parts.extra_routes:
        app.router.routes.append(route)
    for router in parts.routers():
        app.include_router(router)

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(openai_chat.render_error, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(openai_chat.render_error, invalid_input(exc.errors()))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            err: GatewayError = NotFound(f"no route {request.method} {request.url.path}")
        else:
            err = GatewayError(str(exc.detail), status=exc.status_code)
        return error_response(openai_chat.render_error, err)

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> Response:
        return internal_error(openai_chat.render_error, exc, None)

    return app


def invalid_input(errors: Sequence[Any]) -> InvalidRequest:
    """A 400 naming the first bad field (or saying the body is not JSON at all), never a 422."""
    first: Any = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        where = first.get("loc", ())[-1] if first.get("loc") else "?"
        reason = (first.get("ctx") or {}).get("error", "malformed")
        return InvalidRequest(f"request body is not valid JSON: {reason} (at character {where})")
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path")]
    field_name = ".".join(loc) or None
    if field_name is None and ": " in str(first.get("msg")):  # a whole-body check names its field
        field_name = str(first["msg"]).removeprefix("Value error, ").split(": ", 1)[0].split(".")[0]
        return InvalidRequest(str(first["msg"]).removeprefix("Value error, "), param=field_name)
    message = f"{field_name}: {first.get('msg')}" if field_name else str(first.get("msg"))
    return InvalidRequest(message, param=field_name)


def json_response(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
