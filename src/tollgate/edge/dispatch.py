"""``HotPaths``: the ASGI entry point. Inference requests reach their handler with one dict
lookup; everything else (admin API, docs, health details, passthrough) goes to the full app,
which is built on the first request that needs it.

The full app's middleware stack (error middleware, exception middleware, FastAPI's per-request
work, a regex scan of ~150 routes) costs more CPU than the rest of a gateway request put
together, and the inference handlers need none of it: they render every error themselves, in
the caller's dialect. ``HotPaths`` also runs the lifespan (start-up and shutdown hooks).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Handler = Callable[[Request], Awaitable[Response]]
Hook = Callable[[], Awaitable[None]]

log = logging.getLogger("tollgate.edge")

_BEDROCK_PREFIXES = ("/model/", "/bedrock/model/")
_BEDROCK_SUFFIXES = ("/converse", "/converse-stream")


def route_path(scope: Scope) -> str:
    """The path the routes are matched against: the request's path without the ``root_path``
    prefix when it carries it (ASGI keeps the prefix in ``path``; Starlette's routers strip it
    the same way). A request without the prefix (a proxy in front stripped it) keeps its path."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root) and path[len(root) : len(root) + 1] in ("/", ""):
        return path[len(root) :] or "/"
    return path


def bedrock_model_id(path: str) -> str | None:
    """``/bedrock/model/<id>/converse-stream`` → ``<id>`` (ids may contain ``/`` and ``:``)."""
    for prefix in _BEDROCK_PREFIXES:
        if path.startswith(prefix):
            for suffix in _BEDROCK_SUFFIXES:
                if path.endswith(suffix) and len(path) > len(prefix) + len(suffix):
                    return path[len(prefix) : -len(suffix)]
    return None


class HotPaths:
    def __init__(
        self,
        full_app: Callable[[], ASGIApp],
        *,
        post: Mapping[str, Handler],
        get: Mapping[str, Handler],
        bedrock: Handler,
        on_startup: Sequence[Hook] = (),
        on_shutdown: Sequence[Hook] = (),
        root_path: str = "",
        freeze_heap: bool = False,
    ) -> None:
        self._root = root_path  # SERVER_ROOT_PATH: every route answers under it (and without it)
        self._build_full_app = full_app
        self._app: ASGIApp | None = None
        self._routes: dict[tuple[str, str], Handler] = {("POST", p): h for p, h in post.items()}
        self._routes.update({("GET", p): h for p, h in get.items()})
        self._bedrock = bedrock
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        # Served processes only (not in-process test apps): what start-up built, and the admin
        # app once built, live as long as the process, so the cyclic collector is told to leave
        # them alone (gc.freeze). Otherwise each full collection walks every module, route and
        # config object again; a 30,000-entry spend report paid ~10 % of its time for that.
        self._freeze_heap = freeze_heap

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if self._root and kind in ("http", "websocket"):
            scope["root_path"] = self._root
            if scope["path"] == self._root:  # the prefix alone: its root page, with the slash
                await _redirect(self._root + "/", scope, receive, send)
                return
        if kind == "http":
            path = route_path(scope) if self._root else scope["path"]
            handler = self._routes.get((scope["method"], path))
            if handler is None and scope["method"] == "POST":
                model_id = bedrock_model_id(path)
                if model_id is not None:
                    scope["path_params"] = {"model_id": model_id}
                    handler = self._bedrock
            if handler is not None:
                response = await handler(Request(scope, receive))
                await response(scope, receive, send)
                return
        elif kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._app is None:
            self._app = self._build_full_app()
            if self._freeze_heap:
                gc.freeze()
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for start in self._on_startup:
                        await start()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self._freeze_heap:
                    gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for stop in self._on_shutdown:
                    try:
                        await stop()
                    except Exception:
                        log.exception("error during shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _redirect(location: str, scope: Scope, receive: Receive, send: Send) -> None:
    from starlette.responses import RedirectResponse

    await RedirectResponse(location, status_code=308)(scope, receive, send)
