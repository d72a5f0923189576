"""OAuth 2.0 / OIDC bearer JWTs: settings (``litellm_jwtauth``), JWKS, verification, identities
and the store-backed resolution of an identity to a ``Principal``.

Only ``looks_like_jwt`` lives here: it decides which authenticator a bearer credential goes to,
and it must not load PyJWT (``verifier`` does, and only when JWT auth is enabled).
"""

from __future__ import annotations

import base64
import binascii

import orjson


def looks_like_jwt(token: str) -> bool:
    """Three base64url segments whose first decodes to a JSON object with a string ``alg``."""
    if token.count(".") != 2 or token.startswith("sk-"):
        return False
    head = token.partition(".")[0]
    if not head or len(head) > 2048:
        return False
    try:
        header = orjson.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and isinstance(header.get("alg"), str)


