"""Deployments stored in the database (LiteLLM ``/model/new``, ``/model/update``, ``/model/delete``,
``/model/info``).

A body is validated by building a ``Deployment`` from it exactly as a YAML entry is built. Secrets
stay in the database as given and never leave it: every view masks them. ``on_change`` lets the
composition root rebuild its routing table after a write.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tollgate.admin.access import Clock, require_admin
from tollgate.admin.policies import iso
from tollgate.admin.requests import ModelRequest, ModelUpdateRequest
from tollgate.auth.principal import Principal
from tollgate.config import Deployment, deployment_from_dict
from tollgate.errors import ConfigError, InvalidRequest, NotFound
from tollgate.store import Store
from tollgate.store.records import StoredDeployment

MASK = "********"
SECRET_PARAMS = frozenset(
    {
        "api_key", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
        "aws_web_identity_token", "vertex_credentials", "azure_ad_token", "client_secret",
    }
)
OnChange = Callable[[], Awaitable[None]]


def mask(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (MASK if k in SECRET_PARAMS and v else v) for k, v in params.items()}


def _config_params(d: Deployment) -> dict[str, Any]:
    params: dict[str, Any] = {"model": d.litellm_model, **d.params}
    for name in ("api_base", "api_version", "timeout", "stream_timeout", "max_retries", "rpm", "tpm",
                 "weight", "order"):
        if (value := getattr(d, name)) is not None:
            params[name] = value
    if d.api_key:
        params["api_key"] = MASK
    if d.aws is not None:
        params["aws_region_name"] = d.aws.region
        for name in ("access_key_id", "secret_access_key", "session_token"):
            if getattr(d.aws, name):
                params[f"aws_{name}"] = MASK
    return params


def config_view(d: Deployment) -> dict[str, Any]:
    info = {**d.info.extra, "id": d.id, "db_model": False, "mode": d.info.mode}
    return {"model_name": d.model_name, "litellm_params": _config_params(d), "model_info": info}


def stored_view(s: StoredDeployment) -> dict[str, Any]:
    info = {**s.model_info, "id": s.id, "db_model": True, "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at)}
    return {"model_name": s.model_name, "litellm_params": mask(s.litellm_params), "model_info": info}


def to_deployment(s: StoredDeployment) -> Deployment:
    entry = {"model_name": s.model_name, "litellm_params": dict(s.litellm_params),
             "model_info": {**s.model_info, "id": s.id}}
    return deployment_from_dict(entry, where=f"model {s.id}", source="db")


def _validated(model_name: str, params: Mapping[str, Any], info: Mapping[str, Any], dep_id: str) -> None:
    try:
        to_deployment(StoredDeployment(dep_id, model_name, params, info))
    except ConfigError as exc:
        raise InvalidRequest(exc.message, param="litellm_params") from None


class DeploymentService:
    def __init__(self, store: Store, clock: Clock, on_change: OnChange | None = None) -> None:
        self._store = store
        self._clock = clock
        self._on_change = on_change

    async def stored(self) -> list[Deployment]:
        """Every DB deployment, for the routing table."""
        async with self._store.transaction() as tx:
            rows = await tx.deployments.find()
        return [to_deployment(s) for s in rows]

    async def add(self, actor: Principal, body: ModelRequest) -> dict[str, Any]:
        require_admin(actor, "adding a model")
        info = dict(body.model_info or {})
        dep_id = str(info.pop("id", None) or uuid.uuid4())
        _validated(body.model_name, body.litellm_params, info, dep_id)
        now = self._clock()
        record = StoredDeployment(dep_id, body.model_name, dict(body.litellm_params), info, now, now)
        async with self._store.transaction() as tx:
            await tx.deployments.insert(record)
        await self._changed()
        return stored_view(record)

    async def update(self, actor: Principal, body: ModelUpdateRequest) -> dict[str, Any]:
        require_admin(actor, "updating a model")
        dep_id = body.id or (body.model_info or {}).get("id")
        if not dep_id:
            raise InvalidRequest("id: pass the model id (or model_info.id)", param="id")
        async with self._store.transaction() as tx:
            current = await tx.deployments.get(str(dep_id))
            if current is None:
                raise NotFound(f"model '{dep_id}' not found (only models added through the API can change)")
            params = {**current.litellm_params, **(body.litellm_params or {})}
            info = {**current.model_info, **{k: v for k, v in (body.model_info or {}).items() if k != "id"}}
            name = body.model_name or current.model_name
            _validated(name, params, info, current.id)
            record = replace(current, model_name=name, litellm_params=params, model_info=info,
                             updated_at=self._clock())
            await tx.deployments.replace(record)
        await self._changed()
        return stored_view(record)

    async def delete(self, actor: Principal, dep_id: str) -> dict[str, Any]:
        require_admin(actor, "deleting a model")
        async with self._store.transaction() as tx:
            if not await tx.deployments.delete([dep_id]):
                raise NotFound(f"model '{dep_id}' not found", param="id")
        await self._changed()
        return {"message": f"Model: {dep_id} deleted successfully"}

    async def info(
        self, actor: Principal, configured: Sequence[Deployment], model_id: str | None = None
    ) -> dict[str, Any]:
        """Config and DB deployments, secrets masked (any authenticated caller may read)."""
        async with self._store.transaction() as tx:
            stored = await tx.deployments.find()
        data = [config_view(d) for d in configured if d.source == "config"]
        data += [stored_view(s) for s in stored]
        if model_id is not None:
            data = [d for d in data if d["model_info"]["id"] == model_id]
        return {"data": data}

    async def _changed(self) -> None:
        if self._on_change is not None:
            await self._on_change()
