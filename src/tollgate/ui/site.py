"""The web UI assembled from its settings: the session gate, the sign-in routes, the pages and
the UI's extra admin endpoints. The composition root builds one ``WebUi`` per gateway."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from starlette.routing import BaseRoute

from tollgate.auth.sessions import SessionCodec, signing_key
from tollgate.auth.sso import SsoHttp
from tollgate.auth.ui_identity import SessionPrincipals
from tollgate.auth.ui_settings import UiSettings
from tollgate.store import Store
from tollgate.store.records import EntityPolicy
from tollgate.ui.gate import UiGate
from tollgate.ui.pages import Pages
from tollgate.ui.signin import SignIn

if TYPE_CHECKING:
    from fastapi import APIRouter

    from tollgate.admin import AdminServices
    from tollgate.ui.usage_api import Authenticate


@dataclass(frozen=True, slots=True)
class WebUi:
    gate: UiGate
    signin: SignIn
    pages: Pages

    @classmethod
    def build(
        cls, settings: UiSettings, store: Store, http: SsoHttp, *, user_seed: EntityPolicy,
        clock: Callable[[], float], store_model_in_db: bool = False,
    ) -> WebUi:
        # Without a master key or UI_SESSION_SECRET the API is open anyway; a per-process secret
        # then only means a UI_PASSWORD session does not carry over to other workers.
        secret = settings.session_secret or secrets.token_hex(32)
        codec = SessionCodec(signing_key(secret, settings.password), idle_seconds=settings.idle_seconds,
                             max_seconds=settings.max_seconds)
        gate = UiGate(settings, codec, SessionPrincipals(store, settings.proxy_admin_id), clock)
        signin = SignIn(gate, store, http, user_seed=user_seed, store_model_in_db=store_model_in_db,
                        now=lambda: datetime.fromtimestamp(clock(), UTC))
        return cls(gate, signin, Pages())

    def routes(self) -> list[BaseRoute]:
        return [*self.signin.routes(), *self.pages.routes()]

    def router(self, services: AdminServices, authenticate: Authenticate) -> APIRouter:
        from tollgate.ui.usage_api import ui_api_router

        return ui_api_router(services, authenticate)


__all__ = ["WebUi"]
