"""Tool-call arguments between canonical JSON text and the JSON objects that Anthropic and Bedrock
put on the wire. Imports nothing from the gateway.
"""

from __future__ import annotations

from typing import Any

import orjson


def tool_input(arguments: str) -> dict[str, Any]:
    """Tool-call arguments as the JSON object Anthropic and Bedrock want. Models sometimes emit
    broken or non-object JSON; that becomes ``{}``."""
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
