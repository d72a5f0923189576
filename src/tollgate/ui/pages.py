"""Static files of the web UI and the API docs, with the headers that keep them air-gapped.

``/ui`` and every ``/ui/<page>`` answer the one ``index.html`` (the pages route in the browser);
``/ui/static/…`` are the UI's own files. ``/`` and ``/docs`` are Swagger UI for ``/openapi.json``,
its code served from the ``swagger-ui-bundle-v2`` package installed with tollgate (FastAPI's
default page loads it from a CDN). Every page is sent with a Content-Security-Policy that allows
nothing but this gateway: no inline script, no foreign script, style, font, image or connection.
Files are read once, on first use, and revalidated by ETag.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from tollgate.ui.gate import public_path

STATIC = Path(__file__).with_name("static")
# Nothing but this origin; inline script never. Swagger UI sets inline style attributes, so the
# docs pages allow inline *style* (not script).
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
DOCS_CSP = UI_CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
PAGES = frozenset({"", "keys", "teams", "users", "organizations", "models", "usage", "logs", "playground",
                   "audit", "login"})
SWAGGER_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
          ".html": "text/html; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}


@dataclass(frozen=True, slots=True)
class _File:
    body: bytes
    etag: str
    media_type: str


def swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


class Pages:
    def __init__(self, static: Path = STATIC, swagger: Path | None = None) -> None:
        self._static = static.resolve()
        self._swagger = swagger
        self._files: dict[Path, _File] = {}

    def routes(self) -> list[BaseRoute]:
        table = [
            ("/", self.docs), ("/docs", self.docs), ("/docs/assets/{name}", self.swagger_asset),
            ("/ui", self.to_ui), ("/ui/static/{path:path}", self.asset), ("/ui/", self.index),
            ("/ui/{page}", self.index),
        ]
        return [Route(path, handler, methods=["GET", "HEAD"], include_in_schema=False)
                for path, handler in table]

    async def to_ui(self, request: Request) -> Response:
        return RedirectResponse(public_path(request, "/ui/"), status_code=308)

    async def index(self, request: Request) -> Response:
        """Every page of the UI is the one document; its router draws the page the URL names."""
        page: str = request.path_params.get("page", "")
        if page not in PAGES:
            return self._missing()
        return self._send(request, self._static / "index.html", UI_CSP)

    async def docs(self, request: Request) -> Response:
        return self._send(request, self._static / "docs.html", DOCS_CSP)

    async def asset(self, request: Request) -> Response:
        path = (self._static / request.path_params["path"]).resolve()
        if not path.is_relative_to(self._static) or path.suffix not in _TYPES or not path.is_file():
            return self._missing()
        return self._send(request, path, UI_CSP)

    async def swagger_asset(self, request: Request) -> Response:
        name: str = request.path_params["name"]
        if name not in SWAGGER_FILES:
            return self._missing()
        if self._swagger is None:
            self._swagger = swagger_dir()
        return self._send(request, self._swagger / name, DOCS_CSP)

    def _send(self, request: Request, path: Path, csp: str) -> Response:
        file = self._files.get(path)
        if file is None:
            body = path.read_bytes()
            guessed = mimetypes.guess_type(path.name)[0]
            media = _TYPES.get(path.suffix) or guessed or "application/octet-stream"
            file = self._files[path] = _File(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"', media)
        headers = {**SECURITY_HEADERS, "content-security-policy": csp, "etag": file.etag,
                   "cache-control": "no-cache"}
        if request.headers.get("if-none-match") == file.etag:
            return Response(status_code=304, headers=headers)
        return Response(file.body, media_type=file.media_type, headers=headers)

    @staticmethod
    def _missing() -> Response:
        body = b'{"error":{"message":"not found","type":"not_found_error","param":null,"code":"404"}}'
        return Response(body, status_code=404, media_type="application/json", headers=SECURITY_HEADERS)


__all__ = ["DOCS_CSP", "UI_CSP", "Pages"]
