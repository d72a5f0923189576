"""Who a chat-history session belongs to, and who may use it. Pure.

A session belongs to the key that started it and to that key's user. The owning key, and any
other key of the same user, may continue it and read it; nobody else may, admins included
(they read and delete sessions through the admin API instead). A key is known by its hash;
the master key by ``master``; a JWT caller without a key by its subject. A caller with neither
key nor user cannot own a session.
"""

from __future__ import annotations

from dataclasses import dataclass

from tollgate.auth.principal import Principal
from tollgate.errors import PermissionDenied
from tollgate.store.conversations import SessionRecord


@dataclass(frozen=True, slots=True)
class Owner:
    key: str | None
    user: str | None


def owner_of(principal: Principal) -> Owner:
    key = principal.key_hash
    if key is None and principal.kind in ("master", "open"):
        key = principal.kind
    elif key is None and principal.subject:
        key = f"{principal.kind}:{principal.subject}"
    if key is None and principal.user_id is None:
        raise PermissionDenied("chat history needs a caller with a key or a user to own the session")
    return Owner(key, principal.user_id)


def may_use(owner: Owner, session: SessionRecord) -> bool:
    if session.owner_key is not None and session.owner_key == owner.key:
        return True
    return session.owner_user is not None and session.owner_user == owner.user
