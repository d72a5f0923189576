"""The gateway's own conversation fields, read the same way by every chat dialect: the chat-history
switches ``enable_history`` and ``session_id``, and a managed prompt's ``promptVariables``
(``{"name": {"text": "value"}}``, Bedrock's shape, also used by OpenAI clients through
``extra_body``). They become typed fields of ``ChatRequest`` and are never sent upstream.
Imports ``errors`` only.
"""

from __future__ import annotations

from collections.abc import Mapping

from tollgate.errors import InvalidRequest

MAX_SESSION_ID = 128


def history_switches(enable: object, session: object, where: str = "") -> tuple[bool, str | None]:
    """``(enable_history, session_id)``; ``where`` prefixes the names in error messages
    (``additionalModelRequestFields.``). ``null`` means absent."""
    if enable is not None and not isinstance(enable, bool):
        raise InvalidRequest(f"'{where}enable_history' must be a boolean", param=f"{where}enable_history")
    if session is not None and (
        not isinstance(session, str) or not session.strip() or len(session) > MAX_SESSION_ID
    ):
        raise InvalidRequest(
            f"'{where}session_id' must be a non-empty string of at most {MAX_SESSION_ID} characters",
            param=f"{where}session_id",
        )
    return bool(enable), session


def prompt_variables(raw: object, param: str = "promptVariables") -> Mapping[str, str] | None:
    """``{"topic": {"text": "fruit"}}`` → ``{"topic": "fruit"}``; ``None`` when absent."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{param}' must be an object of variables", param=param)
    out: dict[str, str] = {}
    for name, value in raw.items():
        text = value.get("text") if isinstance(value, dict) else None
        if not isinstance(text, str) or set(value) != {"text"}:
            raise InvalidRequest(
                f"'{param}.{name}' must be an object with one string member 'text'", param=f"{param}.{name}"
            )
        out[name] = text
    return out
