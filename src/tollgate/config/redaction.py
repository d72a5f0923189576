"""What of a deployment may be shown, to anyone (admins included), in responses, logs and audit rows.

An allow-list, not a deny-list: ``litellm_params`` and ``model_info`` keys that are known to be
harmless are shown; every other value (``api_key``, ``api_token``, AWS credentials, a parameter
tollgate has never heard of) becomes ``MASK``. ``extra_headers`` keep their names and lose their
values. URLs keep scheme, host, port and path; a password in the user-info part and every query
value are masked (``https://user:********@host/v1?key=********``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "********"

SHOWN_PARAMS = frozenset(
    {
        "model", "api_version", "timeout", "stream_timeout", "max_retries", "rpm", "tpm", "weight",
        "order", "aws_region_name", "input_cost_per_token", "output_cost_per_token",
        "cache_read_input_token_cost", "cache_creation_input_token_cost", "max_input_tokens",
        "max_output_tokens", "drop_params", "litellm_credential_name",
    }
)
URL_PARAMS = frozenset({"api_base", "base_url", "aws_bedrock_runtime_endpoint", "aws_sts_endpoint"})
HEADER_PARAMS = frozenset({"extra_headers", "headers"})
SHOWN_INFO = frozenset(
    {
        "id", "db_model", "mode", "base_model", "max_tokens", "max_input_tokens", "max_output_tokens",
        "input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost",
        "cache_creation_input_token_cost", "created_at", "updated_at", "description", "access_groups",
        "tier", "team_id",
    }
)
_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@/\s]+)@")


def redact_url(url: str) -> str:
    """``url`` without its password and query values."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{MASK}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def redact_text(text: str) -> str:
    """Free text (an error message) with any ``scheme://user:password@`` password masked."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def redact_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``litellm_params`` as they may be shown."""
    shown: dict[str, Any] = {}
    for name, value in params.items():
        if value is None or name in SHOWN_PARAMS:
            shown[name] = value
        elif name in URL_PARAMS and isinstance(value, str):
            shown[name] = redact_url(value)
        elif name in HEADER_PARAMS and isinstance(value, Mapping):
            shown[name] = {str(header): MASK for header in value}
        else:
            shown[name] = MASK
    return shown


def redact_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """``model_info`` as it may be shown: known fields, ``supports_*`` flags and prices."""
    return {
        name: value if _shown_info(name) else MASK
        for name, value in info.items()
    }


def _shown_info(name: str) -> bool:
    return name in SHOWN_INFO or name.startswith("supports_") or name.endswith(("_per_token", "_token_cost"))
