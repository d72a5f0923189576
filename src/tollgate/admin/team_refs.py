"""A team named by a caller: by its ``team_id`` or, when no team has that id, by its alias.

The enterprise gateway's README creates teams with only a ``team_alias`` (LiteLLM gives them a
UUID) and then generates keys with ``"team_id": "drafting"``: the alias. Every admin route that
takes a team from a caller resolves it here, so that call means the team the caller named. An id
always wins over an alias; an alias several teams share is refused, naming them.
"""

from __future__ import annotations

from tollgate.errors import InvalidRequest, NotFound
from tollgate.store import StoreTx
from tollgate.store.records import Team

AMBIGUOUS_SHOWN = 5  # team ids named in the refusal of an ambiguous alias


async def find_team(tx: StoreTx, ref: str, param: str = "team_id") -> Team | None:
    """The team whose id is ``ref``, else the one team whose alias is ``ref``, else ``None``."""
    team = await tx.teams.get(ref)
    if team is not None:
        return team
    named = await tx.teams.find({"alias": ref}, limit=AMBIGUOUS_SHOWN + 1)
    if len(named) > 1:
        ids = ", ".join(f"'{t.id}'" for t in named[:AMBIGUOUS_SHOWN])
        more = " and more" if len(named) > AMBIGUOUS_SHOWN else ""
        raise InvalidRequest(f"{param}: '{ref}' is no team's id and the alias of several teams "
                             f"({ids}{more}); name the team by its team_id", param=param)
    return named[0] if named else None


async def require_team(tx: StoreTx, ref: str, param: str = "team_id") -> Team:
    team = await find_team(tx, ref, param)
    if team is None:
        raise NotFound(f"team '{ref}' not found (no team has that team_id or team_alias)", param=param)
    return team


async def team_filter(tx: StoreTx, ref: str | None, param: str = "team_id") -> str | None:
    """A list filter's team: the id of the team ``ref`` names, or ``ref`` itself when it names none
    (the filter then matches rows of a team since deleted, as before)."""
    if ref is None:
        return None
    team = await find_team(tx, ref, param)
    return team.id if team is not None else ref
