"""``GET /metrics``: the Prometheus exposition of ``accounting.metrics.Metrics``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollgate.telemetry.metrics import CONTENT_TYPE, Metrics


def metrics_route(metrics: Metrics) -> Route:
    async def serve(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Route("/metrics", serve, methods=["GET"], include_in_schema=False)
