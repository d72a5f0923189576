"""CLI admin commands: ``keys``, ``users``, ``teams`` and ``onboard``, over the same admin services
the HTTP API uses (no server needed), acting as a proxy admin (``cli:<login>`` in the audit log).

Writes behave as API writes do: each is one transaction with its audit entry, and changes that
affect keys are published on Redis (when the config or ``REDIS_URL`` names one), so running
replicas drop their cached principals at once. ``register(subparsers)`` adds the commands to
``tollgate``'s argument parser; each sets ``func`` to a callable taking the parsed namespace and
returning the exit code. Results print as JSON lines on stdout (a new key's plaintext appears there
once); progress goes to stderr (redrawn in place on a terminal, left out otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import orjson

from tollgate.admin import AdminServices
from tollgate.admin.access import NoCache
from tollgate.admin.onboarding import load_tiers, load_users, onboard
from tollgate.admin.requests import (
    DeleteKeysRequest,
    GenerateKeyRequest,
    NewTeamRequest,
    NewUserRequest,
)
from tollgate.auth.principal import Principal
from tollgate.bootstrap import admin_settings, default_config, key_cache
from tollgate.config import Config, load_config
from tollgate.config.environment import DATABASE_URL, read_environment
from tollgate.errors import GatewayError
from tollgate.store import DEFAULT_DATABASE_URL, Store, database_url, open_store, prepare

Action = Callable[[AdminServices, Principal, argparse.Namespace], Awaitable[Any]]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = _group(subparsers, "keys", "manage virtual keys")
    create = _command(keys, "create", "create a key (its plaintext is printed once)", _keys_create)
    create.add_argument("--user-id")
    create.add_argument("--team-id")
    create.add_argument("--alias", dest="key_alias")
    create.add_argument("--duration", help="e.g. 30d, 1mo")
    _policy_options(create)
    listing = _command(keys, "list", "list keys", _keys_list)
    listing.add_argument("--user-id")
    listing.add_argument("--team-id")
    revoke = _command(keys, "revoke", "delete keys (plaintext or hash)", _keys_revoke)
    revoke.add_argument("keys", nargs="+")
    info = _command(keys, "info", "show a key", _keys_info)
    info.add_argument("key")

    users = _group(subparsers, "users", "manage users")
    create = _command(users, "create", "create a user and its first key", _users_create)
    create.add_argument("--email", dest="user_email")
    create.add_argument("--user-id")
    create.add_argument("--alias", dest="user_alias")
    roles = ["proxy_admin", "proxy_admin_viewer", "internal_user", "internal_user_viewer"]
    create.add_argument("--role", dest="user_role", default="internal_user", choices=roles)
    create.add_argument("--team-id")
    _policy_options(create)
    _command(users, "list", "list users", _users_list)
    _command(users, "info", "show a user", _users_info).add_argument("user_id")
    delete = _command(users, "delete", "delete users and their keys", _users_delete)
    delete.add_argument("user_ids", nargs="+")

    teams = _group(subparsers, "teams", "manage teams")
    create = _command(teams, "create", "create a team", _teams_create)
    create.add_argument("--team-id")
    create.add_argument("--alias", dest="team_alias")
    _policy_options(create)
    _command(teams, "list", "list teams", _teams_list)
    _command(teams, "info", "show a team", _teams_info).add_argument("team_id")
    delete = _command(teams, "delete", "delete teams and their keys", _teams_delete)
    delete.add_argument("team_ids", nargs="+")

    on = subparsers.add_parser("onboard", help="create tier teams and users (with keys) from files")
    _common(on)
    on.add_argument("--tiers", required=True, help="YAML file with a 'tiers' mapping")
    on.add_argument("--users", required=True, help="CSV: email,tier,alias,budget,rpm")
    on.set_defaults(func=_runner(_onboard))


def _group(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    parser = subparsers.add_parser(name, help=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True)


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str, action: Action
) -> argparse.ArgumentParser:
    parser = group.add_parser(name, help=help_text)
    _common(parser)
    parser.set_defaults(func=_runner(action))
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="LiteLLM-format config.yaml (for general_settings.database_url)")
    parser.add_argument("--database-url", help="overrides the config's database_url")


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", help="comma-separated model names")
    parser.add_argument("--max-budget", type=Decimal)
    parser.add_argument("--budget-duration", help="e.g. 1d, 1mo")
    parser.add_argument("--rpm", type=int, dest="rpm_limit")
    parser.add_argument("--tpm", type=int, dest="tpm_limit")


def _policy_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if args.models:
        fields["models"] = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in ("max_budget", "budget_duration", "rpm_limit", "tpm_limit"):
        if getattr(args, name) is not None:
            fields[name] = getattr(args, name)
    return fields


def _optional(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def _database_url(args: argparse.Namespace, config: Config | None, env: dict[str, str]) -> str:
    """The database ``serve`` would use with the same ``--config`` and environment."""
    if args.database_url:
        return str(args.database_url)
    if config is not None:
        return database_url(config, env)
    return env.get(DATABASE_URL) or DEFAULT_DATABASE_URL


async def _open(url: str, pool: int) -> Store:
    if url != "memory":
        await prepare(url)  # as serve does
    return open_store(url, pool)


def _runner(action: Action) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        async def main() -> None:
            env = dict(read_environment())
            loaded = load_config(args.config, env=env) if args.config else None
            config = loaded or default_config(env)
            pool = config.general.database_connection_pool_limit
            store = await _open(_database_url(args, loaded, env), pool)
            invalidation = key_cache(config, env, NoCache())
            login = env.get("USER") or "unknown"
            actor = Principal(kind="master", role="proxy_admin", subject=f"cli:{login}")
            try:
                settings = admin_settings(config, env)
                services = AdminServices.build(store, cache=invalidation, settings=settings)
                result = await action(services, actor, args)
                for item in result if isinstance(result, list) else [result]:
                    sys.stdout.write(orjson.dumps(item).decode() + "\n")
            finally:
                await invalidation.stop()  # waits for the invalidations to be published
                await store.close()

        try:
            asyncio.run(main())
        except GatewayError as exc:
            sys.stderr.write(f"error: {exc.message}\n")
            return 1
        return 0

    return run


async def _keys_create(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    fields = {**_policy_fields(args), **_optional(args, "user_id", "team_id", "key_alias", "duration")}
    return await s.keys.generate(actor, GenerateKeyRequest(**fields))


async def _keys_list(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    out: list[Any] = []
    page = 1
    while True:
        result = await s.keys.list_keys(actor, page=page, size=100, user_id=args.user_id,
                                        team_id=args.team_id, return_full_object=True)
        out.extend(result["keys"])
        if page >= result["total_pages"]:
            return out
        page += 1


async def _keys_revoke(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.keys.delete(actor, DeleteKeysRequest(keys=args.keys))


async def _keys_info(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.keys.info(actor, args.key)


async def _users_create(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    fields = {**_policy_fields(args), **_optional(args, "user_email", "user_id", "user_alias", "team_id")}
    return await s.users.new_user(actor, NewUserRequest(user_role=args.user_role, **fields))


async def _users_list(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return (await s.users.list_users(actor, page_size=100))["users"]


async def _users_info(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.users.user_info(actor, [args.user_id])


async def _users_delete(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.users.delete_users(actor, args.user_ids)


async def _teams_create(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    fields = {**_policy_fields(args), **_optional(args, "team_id", "team_alias")}
    return await s.teams.new_team(actor, NewTeamRequest(**fields))


async def _teams_list(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.teams.list_teams(actor)


async def _teams_info(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.teams.team_info(actor, args.team_id)


async def _teams_delete(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    return await s.teams.delete_teams(actor, args.team_ids)


async def _onboard(s: AdminServices, actor: Principal, args: argparse.Namespace) -> Any:
    def progress(done: int, total: int, email: str) -> None:
        sys.stderr.write(f"\r[{done}/{total}] {email}\x1b[K")  # one line, redrawn (a terminal's codes)
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    # A log file or pipe gets the summary lines only, never the terminal's redraw codes.
    shown = progress if sys.stderr.isatty() else None
    result = await onboard(s, actor, load_tiers(args.tiers), load_users(args.users), shown)
    for email in result.skipped:
        sys.stderr.write(f"skipped {email}: already exists\n")
    sys.stderr.write(
        f"teams created: {len(result.teams_created)}, users created: {len(result.created)}, "
        f"skipped: {len(result.skipped)}\n"
    )
    return result.created
