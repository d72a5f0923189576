"""Builders for ``Attempted`` values in accounting tests."""

from __future__ import annotations

from typing import Any

from tollgate.auth.principal import Principal
from tollgate.call import Attempted, Call
from tollgate.canonical import ChatRequest, Message, TextPart, Usage
from tollgate.config import Deployment, parse_config
from tollgate.errors import GatewayError

DEFAULT_USAGE = Usage(input_tokens=10, output_tokens=5)


def deployment(model: str = "fake/m1", name: str = "gpt") -> Deployment:
    config = parse_config({"model_list": [{"model_name": name, "litellm_params": {"model": model}}]}, env={})
    return config.deployments[0]


def attempted(
    request_id: str = "r1",
    *,
    usage: Usage | None = DEFAULT_USAGE,
    error: GatewayError | None = None,
    started: float = 1_700_000_000.0,
    deployment_: Deployment | None = None,
    **kw: Any,
) -> Attempted:
    principal = Principal(kind="key", key_hash="hash1", key_alias="alias1", user_id="u1", team_id="t1")
    request = ChatRequest(
        "gpt", (Message("user", (TextPart("hello there"),)),), metadata={"tags": ["m-tag"], "app": "x"}
    )
    call = Call(principal, request, "openai", request_id, started, tags=("c-tag",))
    return Attempted(
        call=call,
        deployment=deployment_ if deployment_ is not None else deployment(),
        model_group="gpt",
        attempts=1,
        usage=usage,
        status=error.status if error is not None else 200,
        error=error,
        started=started,
        ended=started + 0.5,
        **kw,
    )
