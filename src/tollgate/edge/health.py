"""Health endpoints, LiteLLM's paths: liveliness and readiness without auth, ``/health`` with it.

``/health`` really calls every deployment (a one-token request, as LiteLLM does) and reports
healthy and unhealthy endpoints without secrets. Readiness reflects the stores' health checks.
Probes can also be served on a separate port (``--health-port``, ``SEPARATE_HEALTH_APP``):
see ``edge/health_port.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from tollgate import __version__
from tollgate.auth.principal import Principal
from tollgate.canonical import ChatRequest, EmbeddingRequest, Message, TextPart
from tollgate.config import Deployment
from tollgate.config.redaction import redact_text, redact_url
from tollgate.dialects.openai import chat as openai_chat
from tollgate.edge.inference import error_response
from tollgate.errors import GatewayError, PermissionDenied
from tollgate.providers import Provider, SendOptions

Check = Callable[[], Awaitable[tuple[bool, str]]]
PROBE_TIMEOUT = 30.0
CHECK_TIMEOUT = 2.0  # readiness answers within this, however slow a store is (a check that is late fails)


def _json(payload: object, status: int = 200) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type="application/json")


def _describe(dep: Deployment) -> dict[str, Any]:
    return {
        "model": dep.litellm_model,
        "model_name": dep.model_name,
        "model_id": dep.id,
        "api_base": redact_url(dep.api_base) if dep.api_base else None,
    }


async def _bounded(check: Check) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await check()
    except TimeoutError:
        return False, f"no answer within {CHECK_TIMEOUT:g}s"


class Health:
    def __init__(
        self,
        deployments: Callable[[], Sequence[Deployment]],
        providers: Mapping[str, Provider],
        authenticate: Callable[[Request], Awaitable[Principal]],
        checks: Mapping[str, Check] | None = None,
    ) -> None:
        self._deployments = deployments
        self._providers = providers
        self._authenticate = authenticate
        self._checks = dict(checks or {})

    def add_check(self, name: str, check: Check) -> None:
        self._checks[name] = check

    def mount(self, app: Starlette) -> None:
        for path in ("/health/liveliness", "/health/liveness", "/v1/health/liveliness"):
            app.add_route(path, self.liveliness, methods=["GET"], include_in_schema=False)
        for path in ("/health/readiness", "/v1/health/readiness"):
            app.add_route(path, self.readiness, methods=["GET"], include_in_schema=False)
        for path in ("/health", "/v1/health"):
            app.add_route(path, self.endpoints, methods=["GET"], include_in_schema=False)

    async def liveliness(self, request: Request) -> Response:
        return _json("I'm alive!")

    async def readiness(self, request: Request) -> Response:
        """200 while this replica can serve, 503 when it cannot; each store's state is reported.
        The checks run together, each bounded by ``CHECK_TIMEOUT``."""
        report: dict[str, Any] = {
            "status": "healthy",
            "tollgate_version": __version__,
            "litellm_version": None,
        }
        names = list(self._checks)
        results = await asyncio.gather(*(_bounded(self._checks[name]) for name in names))
        healthy = True
        for name, (ok, detail) in zip(names, results, strict=True):
            report[name] = detail
            healthy = healthy and ok
        report.setdefault("db", "Not connected")
        report.setdefault("cache", None)
        if not healthy:
            report["status"] = "unhealthy"
        return _json(report, 200 if healthy else 503)

    async def endpoints(self, request: Request) -> Response:
        try:
            principal = await self._authenticate(request)
            if not principal.is_admin and principal.role != "proxy_admin_viewer":
                raise PermissionDenied("only admins may run /health checks against every deployment")
        except GatewayError as exc:
            return error_response(openai_chat.render_error, exc)
        wanted = request.query_params.get("model")
        deployments = [d for d in self._deployments() if wanted is None or d.model_name == wanted]
        results = await asyncio.gather(*(self._probe(d) for d in deployments))
        healthy = [{**_describe(d)} for d, err in zip(deployments, results, strict=True) if err is None]
        unhealthy = [
            {**_describe(d), "error": err}
            for d, err in zip(deployments, results, strict=True)
            if err is not None
        ]
        return _json(
            {
                "healthy_endpoints": healthy,
                "unhealthy_endpoints": unhealthy,
                "healthy_count": len(healthy),
                "unhealthy_count": len(unhealthy),
            }
        )

    async def _probe(self, dep: Deployment) -> str | None:
        provider = self._providers.get(dep.provider)
        if provider is None:
            return f"no provider {dep.provider}"
        options = SendOptions(timeout=min(dep.timeout or PROBE_TIMEOUT, PROBE_TIMEOUT), drop_params=True)
        try:
            if dep.info.mode == "embedding":
                await provider.embed(dep, EmbeddingRequest(model=dep.model_name, inputs=("ping",)), options)
            else:
                ping = ChatRequest(
                    model=dep.model_name, messages=(Message("user", (TextPart("ping"),)),), max_tokens=1
                )
                await provider.chat(dep, ping, options)
        except GatewayError as exc:
            return redact_text(f"{type(exc).__name__}: {exc.message}")[:500]
        except Exception as exc:
            return f"{type(exc).__name__}"
        return None
