"""The ASGI application: the route table, error handlers and lifespan.

Inference routes are plain Starlette routes (no FastAPI dependency injection on the hot path);
the admin API is a FastAPI router so its pydantic bodies are validated and documented at /docs.
Paths follow LiteLLM's, with and without the ``/v1`` prefix.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from tollgate.dialects import openai_chat
from tollgate.edge.health import Health
from tollgate.edge.inference import Inference, error_response, internal_error
from tollgate.errors import GatewayError, InvalidRequest, NotFound

log = logging.getLogger("tollgate.edge")


@dataclass
class EdgeParts:
    """What the composition root hands the edge."""

    inference: Inference
    health: Health
    list_models: Callable[[Request], Awaitable[Response]]
    extra_routes: Sequence[BaseRoute] = ()
    routers: Sequence[object] = ()  # FastAPI APIRouters (admin API)
    on_startup: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = field(default_factory=list)


def _chat_routes(inference: Inference) -> list[tuple[str, Callable[[Request], Awaitable[Response]]]]:
    from tollgate.dialects import anthropic_messages, bedrock_converse

    async def openai(request: Request) -> Response:
        return await inference.chat(request, openai_chat)

    async def anthropic(request: Request) -> Response:
        return await inference.chat(request, anthropic_messages)

    async def bedrock(request: Request) -> Response:
        model_id: str = request.path_params["model_id"]
        stream = request.url.path.endswith("/converse-stream")
        return await inference.chat(request, bedrock_converse, model=model_id, stream=stream)

    routes: list[tuple[str, Callable[[Request], Awaitable[Response]]]] = []
    for prefix in ("", "/v1", "/openai", "/openai/v1"):
        routes.append((f"{prefix}/chat/completions", openai))
        routes.append((f"{prefix}/embeddings", inference.embeddings))
    routes.append(("/engines/{model}/chat/completions", openai))
    routes.append(("/openai/deployments/{model}/chat/completions", openai))
    for prefix in ("", "/anthropic"):
        routes.append((f"{prefix}/v1/messages", anthropic))
    for prefix in ("", "/bedrock"):
        routes.append((f"{prefix}/model/{{model_id:path}}/converse", bedrock))
        routes.append((f"{prefix}/model/{{model_id:path}}/converse-stream", bedrock))
    return routes


def create_app(parts: EdgeParts) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        for start in parts.on_startup:
            await start()
        try:
            yield
        finally:
            for stop in parts.on_shutdown:
                try:
                    await stop()
                except Exception:
                    log.exception("error during shutdown")

    app = FastAPI(
        title="tollgate",
        description="LLM gateway: OpenAI, Anthropic and Bedrock APIs; LiteLLM-compatible admin API.",
        docs_url="/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    for path, endpoint in _chat_routes(parts.inference):
        app.add_route(path, endpoint, methods=["POST"], include_in_schema=False)
    for path in ("/models", "/v1/models"):
        app.add_route(path, parts.list_models, methods=["GET"], include_in_schema=False)
    parts.health.mount(app)
    for route in parts.extra_routes:
        app.router.routes.append(route)
    for router in parts.routers:
        app.include_router(router)  # type: ignore[arg-type]

    @app.exception_handler(GatewayError)
    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return error_response(openai_chat.render_error, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request body"}
        loc = [str(p) for p in first.get("loc", ()) if p != "body"]
        field_name = ".".join(loc) or None
        message = f"{field_name}: {first.get('msg')}" if field_name else str(first.get("msg"))
        status, body, headers = openai_chat.render_error(
            InvalidRequest(message, param=field_name, status=422)
        )
        return Response(body, status_code=status, headers=dict(headers), media_type="application/json")

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


def json_response(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")
