"""``GET /metrics``: the Prometheus exposition of ``telemetry.metrics.Metrics``.

The series are labelled with key aliases, team and user ids, so the route asks for a proxy admin or
viewer key (``Authorization: Bearer …``) unless ``litellm_settings.require_auth_for_metrics_endpoint``
is ``false`` (LiteLLM's setting; tollgate protects by default). See docs/security.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.auth.principal import Principal
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.inference import error_response
from tollgate.errors import GatewayError, PermissionDenied
from tollgate.telemetry.metrics import CONTENT_TYPE, Metrics

Authenticate = Callable[[Request], Awaitable[Principal]]
READERS = ("proxy_admin", "proxy_admin_viewer")


def metrics_route(metrics: Metrics, authenticate: Authenticate | None = None) -> Route:
    """``authenticate``: ``None`` serves the metrics to anyone."""

    async def serve(request: Request) -> Response:
        if authenticate is not None:
            try:
                principal = await authenticate(request)
                if not principal.is_admin and principal.role not in READERS:
                    raise PermissionDenied("/metrics needs a proxy_admin or proxy_admin_viewer key")
            except GatewayError as exc:
                return error_response(openai_chat.render_error, exc)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Route("/metrics", serve, methods=["GET"], include_in_schema=False)
