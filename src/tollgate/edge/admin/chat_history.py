"""The admins' chat-history routes: list sessions, read one, delete some (docs/conversations.md).

Gated like every admin route (``admin.matrix.ROUTES``: reads for admins and viewers, deletes for
proxy admins); a delete is an admin write, recorded in the audit log through the journal (the
entry commits only if the sessions were deleted; the sessions live in their own tables, so the
two are not one transaction).
"""

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from tollgate.admin.journal import Journal
from tollgate.auth.keys import hash_key
from tollgate.conversations import History
from tollgate.edge.admin.route import Actor, Authenticate, Json, Page, admin_route_class
from tollgate.edge.conversations import openai_messages, session_summary


class DeleteSessions(BaseModel):
    session_ids: list[str] = Field(min_length=1, max_length=1000)


def chat_history_router(history: History, journal: Journal, authenticate: Authenticate) -> APIRouter:
    router = APIRouter(tags=["chat history"], route_class=admin_route_class(authenticate))

    @router.get("/chat-history/session/list")
    async def session_list(
        actor: Actor,
        key: str | None = None,
        user_id: str | None = None,
        page: Page = 1,
        size: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> Json:
        owner_key = hash_key(key) if key is not None and key.startswith("sk-") else key
        found = await history.admin_sessions(
            owner_key=owner_key, owner_user=user_id, offset=(page - 1) * size, limit=size
        )
        return {"sessions": [session_summary(s) for s in found], "page": page, "size": size}

    @router.get("/chat-history/session/info")
    async def session_info(actor: Actor, session_id: str) -> Json:
        transcript = await history.admin_transcript(session_id)
        return {**session_summary(transcript.session), "messages": openai_messages(transcript)}

    @router.post("/chat-history/session/delete")
    async def session_delete(actor: Actor, body: DeleteSessions) -> Json:
        async with journal.write(actor, "/chat-history/session/delete") as write:
            write.before(",".join(body.session_ids)[:256])
            view: Json = {"deleted": await history.delete(body.session_ids)}
            write.after(view)
        return view

    return router
