"""Deployments stored in the database (LiteLLM ``/model/new``, ``/model/update``, ``/model/delete``,
``/model/info``).

A body is validated by building a ``Deployment`` from it exactly as a YAML entry is built, and
names, model strings and header values may not carry control characters (a CR/LF would end up in an
upstream request line or header). Secrets are stored encrypted (``config.sealing``: under
``LITELLM_SALT_KEY``, else the master key) and never leave the gateway: every view shows
``litellm_params`` and ``model_info`` through the allow-list of ``config.redaction``, admins
included; callers who are not admins see only the models they may use, without the deployment's
internals. ``/model/new`` is refused unless ``store_model_in_db`` is on (LiteLLM).
``on_change`` lets the composition root rebuild its routing table after a write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from tollgate.admin.access import Clock, can_read_all, require_admin
from tollgate.admin.journal import Journal
from tollgate.admin.policies import iso
from tollgate.admin.requests import ModelRequest, ModelUpdateRequest
from tollgate.auth.principal import Principal
from tollgate.config import Deployment, deployment_from_dict
from tollgate.config.redaction import MASK, redact_info, redact_params
from tollgate.config.sealing import NO_SEALING, Sealer, is_secret
from tollgate.errors import ConfigError, InvalidRequest, NotFound
from tollgate.policy.access import denying_entity
from tollgate.store import Store, open_store
from tollgate.store.records import StoredDeployment

log = logging.getLogger("tollgate.admin")
OnChange = Callable[[], Awaitable[None]]
NOT_IN_DB = ("/model/new is off: set general_settings.store_model_in_db: true (or STORE_MODEL_IN_DB=True) "
             "to add models through the API, or add the model to the config's model_list")
PUBLIC_INFO = ("id", "mode", "base_model", "max_tokens", "max_input_tokens", "max_output_tokens",
               "input_cost_per_token", "output_cost_per_token")


def _config_params(d: Deployment) -> dict[str, Any]:
    params: dict[str, Any] = {"model": d.litellm_model, **d.params}
    for name in ("api_base", "api_key", "api_version", "timeout", "stream_timeout", "max_retries", "rpm",
                 "tpm", "weight", "order"):
        if (value := getattr(d, name)) is not None:
            params[name] = value
    if d.extra_headers:
        params["extra_headers"] = dict(d.extra_headers)
    if d.aws is not None:
        params["aws_region_name"] = d.aws.region
        for name in ("access_key_id", "secret_access_key", "session_token", "web_identity_token"):
            if getattr(d.aws, name):
                params[f"aws_{name}"] = MASK
    return params


def config_view(d: Deployment) -> dict[str, Any]:
    info = {**d.info.extra, "id": d.id, "db_model": False, "mode": d.info.mode}
    return {"model_name": d.model_name, "litellm_params": redact_params(_config_params(d)),
            "model_info": redact_info(info)}


def stored_view(s: StoredDeployment) -> dict[str, Any]:
    info = {**s.model_info, "id": s.id, "db_model": True, "created_at": iso(s.created_at),
            "updated_at": iso(s.updated_at)}
    return {"model_name": s.model_name, "litellm_params": redact_params(s.litellm_params),
            "model_info": redact_info(info)}


def _where(s: StoredDeployment) -> str:
    return f"model '{s.model_name}' ({s.id}) litellm_params"


def opened(s: StoredDeployment, sealer: Sealer) -> StoredDeployment:
    """``s`` with its sealed credentials decrypted; ``ConfigError`` if the key does not open them."""
    return replace(s, litellm_params=sealer.open(s.litellm_params, _where(s)))


def _shown(s: StoredDeployment, sealer: Sealer) -> dict[str, Any]:
    """``stored_view`` of a row, even one whose credentials this key cannot open (to delete it)."""
    try:
        return stored_view(opened(s, sealer))
    except ConfigError:
        masked = {k: MASK if is_secret(k) and v is not None else v for k, v in s.litellm_params.items()}
        return stored_view(replace(s, litellm_params=masked))


async def seal_stored(store: Store, sealer: Sealer) -> int:
    """Before serving: check that every stored deployment's credentials open with the configured key
    (``ConfigError`` naming the first that does not) and encrypt those still stored in plaintext
    (rows written before encryption at rest, or without a key). Returns how many were encrypted."""
    count = 0
    async with store.transaction() as tx:
        for record in await tx.deployments.find():
            params = opened(record, sealer).litellm_params
            if sealer.has_plaintext(record.litellm_params):
                await tx.deployments.replace(replace(record, litellm_params=sealer.seal(params)))
                count += 1
    return count


async def seal_database(url: str, sealer: Sealer) -> None:
    """``seal_stored`` on the database at ``url``, once before serving (``bootstrap``)."""
    if sealer.fernet is None:
        log.warning("neither LITELLM_SALT_KEY nor a master key is set: credentials of models added "
                    "with /model/new are stored unencrypted")
    store = open_store(url, pool_size=1)
    try:
        count = await seal_stored(store, sealer)
    finally:
        await store.close()
    if count:
        log.info("encrypted the stored credentials of %d model(s) with %s", count, sealer.source)


def public_view(view: Mapping[str, Any]) -> dict[str, Any]:
    """What a caller who is not an admin sees of a deployment they may use."""
    info = view["model_info"]
    return {"model_name": view["model_name"],
            "litellm_params": {"model": view["litellm_params"].get("model")},
            "model_info": {name: info[name] for name in PUBLIC_INFO if name in info}}


def to_deployment(s: StoredDeployment) -> Deployment:
    entry = {"model_name": s.model_name, "litellm_params": dict(s.litellm_params),
             "model_info": {**s.model_info, "id": s.id}}
    return deployment_from_dict(entry, where=f"model {s.id}", source="db")


def _no_control_characters(value: Any, where: str) -> None:
    if isinstance(value, str):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise InvalidRequest(f"{where}: control characters (CR, LF, tab, NUL …) are not allowed",
                                 param=where.split(".", 1)[0])
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _no_control_characters(str(key), f"{where}.{key}")
            _no_control_characters(item, f"{where}.{key}")


def _validated(model_name: str, params: Mapping[str, Any], info: Mapping[str, Any], dep_id: str) -> None:
    _no_control_characters(model_name, "model_name")
    _no_control_characters(dep_id, "model_info.id")
    for name in ("model", "api_base", "base_url", "api_version", "extra_headers", "headers"):
        _no_control_characters(params.get(name), f"litellm_params.{name}")
    try:
        to_deployment(StoredDeployment(dep_id, model_name, params, info))
    except ConfigError as exc:
        raise InvalidRequest(exc.message, param="litellm_params") from None


def _unmasked(current: Mapping[str, Any], sent: Mapping[str, Any]) -> dict[str, Any]:
    """``sent`` over ``current``, where a value still ``MASK`` (read back from /model/info) keeps the
    stored one instead of overwriting the secret with the mask."""
    merged = dict(current)
    for name, value in sent.items():
        if value == MASK and name in current:
            continue
        if isinstance(value, Mapping) and isinstance(current.get(name), Mapping):
            value = _unmasked(current[name], value)
        merged[name] = value
    return merged


class DeploymentService:
    def __init__(self, journal: Journal, store: Store, clock: Clock, on_change: OnChange | None = None,
                 *, store_models: bool = True, sealer: Sealer = NO_SEALING) -> None:
        self._sealer = sealer
        self._journal = journal
        self._store = store
        self._clock = clock
        self._on_change = on_change
        self._store_models = store_models

    async def stored(self) -> list[Deployment]:
        """Every DB deployment, for the routing table."""
        async with self._store.transaction() as tx:
            rows = await tx.deployments.find()
        return [to_deployment(opened(s, self._sealer)) for s in rows]

    async def add(self, actor: Principal, body: ModelRequest) -> dict[str, Any]:
        require_admin(actor, "adding a model")
        if not self._store_models:
            raise InvalidRequest(NOT_IN_DB)
        info = dict(body.model_info or {})
        dep_id = str(info.pop("id", None) or uuid.uuid4())
        _validated(body.model_name, body.litellm_params, info, dep_id)
        now = self._clock()
        record = StoredDeployment(dep_id, body.model_name, dict(body.litellm_params), info, now, now)
        async with self._journal.write(actor, "/model/new") as w:
            sealed = self._sealer.seal(record.litellm_params)
            await w.tx.deployments.insert(replace(record, litellm_params=sealed))
            view = stored_view(record)
            w.after(view, dep_id)
        await self._changed()
        return view

    async def update(self, actor: Principal, body: ModelUpdateRequest) -> dict[str, Any]:
        require_admin(actor, "updating a model")
        dep_id = body.id or (body.model_info or {}).get("id")
        if not dep_id:
            raise InvalidRequest("id: pass the model id (or model_info.id)", param="id")
        async with self._journal.write(actor, "/model/update") as w:
            stored = await w.tx.deployments.get(str(dep_id))
            if stored is None:
                raise NotFound(f"model '{dep_id}' not found (only models added through the API can change)")
            current = opened(stored, self._sealer)
            w.before(current.id, stored_view(current))
            params = _unmasked(current.litellm_params, body.litellm_params or {})
            sent_info = {k: v for k, v in (body.model_info or {}).items() if k != "id"}
            info = _unmasked(current.model_info, sent_info)
            name = body.model_name or current.model_name
            _validated(name, params, info, current.id)
            record = replace(current, model_name=name, litellm_params=params, model_info=info,
                             updated_at=self._clock())
            await w.tx.deployments.replace(replace(record, litellm_params=self._sealer.seal(params)))
            view = stored_view(record)
            w.after(view)
        await self._changed()
        return view

    async def delete(self, actor: Principal, dep_id: str) -> dict[str, Any]:
        require_admin(actor, "deleting a model")
        async with self._journal.write(actor, "/model/delete") as w:
            current = await w.tx.deployments.get(dep_id)
            if current is None:
                raise NotFound(f"model '{dep_id}' not found", param="id")
            w.before(dep_id, _shown(current, self._sealer))
            await w.tx.deployments.delete([dep_id])
            view = {"message": f"Model: {dep_id} deleted successfully"}
            w.after(view)
        await self._changed()
        return view

    async def info(
        self, actor: Principal, configured: Sequence[Deployment], model_id: str | None = None
    ) -> dict[str, Any]:
        """Config and DB deployments, redacted; to callers who are not admins or viewers, only the
        models they may use and none of the deployment's details."""
        async with self._store.transaction() as tx:
            stored = await tx.deployments.find()
        data = [config_view(d) for d in configured if d.source == "config"]
        data += [_shown(s, self._sealer) for s in stored]
        if model_id is not None:
            data = [d for d in data if d["model_info"]["id"] == model_id]
        if not can_read_all(actor):
            data = [public_view(d) for d in data if denying_entity(actor, d["model_name"]) is None]
        return {"data": data}

    async def _changed(self) -> None:
        if self._on_change is not None:
            await self._on_change()
