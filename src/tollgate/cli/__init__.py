"""Command line: ``serve``, ``check-config``, ``migrate``, ``rollups rebuild``,
``fake-upstream``, ``version`` and the admin commands (keys, users, teams, onboard). A thin shell
over ``bootstrap`` and ``admin``.

Configuration problems, and a database or Redis that cannot be reached at start, end the
process with one line on stderr and exit code 2, never a traceback.

LiteLLM's container arguments work unchanged: ``tollgate --config /app/config.yaml --num_workers 2
--run_gunicorn`` is ``serve`` (the subcommand may be left out), and ``serve`` takes its defaults
from LiteLLM's variables (``HOST``, ``PORT``, ``NUM_WORKERS``, ``SEPARATE_HEALTH_APP``,
``SEPARATE_HEALTH_PORT``) plus ``TOLLGATE_GRACEFUL_TIMEOUT``, all read in ``serve_defaults``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tollgate import __version__
from tollgate.config import Config, load_config
from tollgate.config.environment import CONFIG, PROMETHEUS_MULTIPROC_DIR, read_environment, server_root_path
from tollgate.errors import ConfigError, StoreUnavailable
from tollgate.telemetry.logs import configure_logging

log = logging.getLogger("tollgate")


def _load(path: str | None) -> Config:
    from tollgate.bootstrap import default_config

    env = read_environment()
    config = load_config(path, env) if path else default_config(env)
    if config.general.enable_jwt_auth:
        from tollgate.auth.jwt.settings import parse_jwt_settings

        parse_jwt_settings(config.general.litellm_jwtauth, env)  # refuse bad JWT settings up front
    return config


def _report_warnings(config: Config) -> None:
    """Keys not acted on, then what ``cli/preflight.py`` finds (an open gateway, fallbacks to
    nowhere, deployments without a price), one line each."""
    from tollgate.cli.preflight import preflight

    for warning in (*config.warnings, *preflight(config)):
        log.warning(warning)


def cmd_check_config(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _report_warnings(config)
    if any(d.provider == "bedrock" for d in config.deployments):
        from tollgate.providers.aws import credential_warnings

        for warning in credential_warnings(config.deployments, read_environment()):
            log.warning(warning)
    groups = sorted({d.model_name for d in config.deployments})
    print(f"ok: {len(config.deployments)} deployments in {len(groups)} model groups: {', '.join(groups)}")
    if args.check_connections:
        _check_connections(config)
    return 0


def _check_connections(config: Config) -> None:
    """Connect to the database and Redis the config names; ``StoreUnavailable`` on failure."""
    from tollgate.bootstrap import check_connections

    for line in asyncio.run(check_connections(config, read_environment())):
        print(line)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tollgate.bootstrap import build

    config = _load(args.config)
    level = "DEBUG" if args.detailed_debug else args.log_level
    configure_logging(json_logs=config.litellm.json_logs, level=level)
    _report_warnings(config)
    root = server_root_path(read_environment())  # a bad SERVER_ROOT_PATH stops here, in one line
    if args.run_gunicorn:
        log.info("--run_gunicorn is not needed: uvicorn's process manager runs the %d workers", args.workers)
    if args.config:
        os.environ[CONFIG] = os.path.abspath(args.config)  # for the worker processes
    common = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": level.lower(),
        "access_log": False,
        "timeout_keep_alive": 75,
        "timeout_graceful_shutdown": args.graceful_timeout,
        "log_config": None,
    }
    if args.health_port:  # first, so liveliness answers while the database is prepared
        from tollgate.edge.health_port import health_port_app, loopback_url, serve_in_thread

        serve_in_thread(health_port_app(loopback_url(args.host, args.port)), args.host, args.health_port)
    from tollgate.bootstrap import prepare_database

    asyncio.run(prepare_database(config, read_environment()))
    if args.workers > 1:
        # Prometheus counters are per process; multiprocess mode sums the workers' files. It must
        # be set before any worker imports prometheus_client.
        if not read_environment().get(PROMETHEUS_MULTIPROC_DIR):
            os.environ[PROMETHEUS_MULTIPROC_DIR] = tempfile.mkdtemp(prefix="tollgate-prom-")
        uvicorn.run("tollgate.bootstrap:app_from_env", factory=True, workers=args.workers, **common)
        return 0
    app = build(config, served=True)
    log.info("tollgate %s serving on http://%s:%d%s", __version__, args.host, args.port, root)
    uvicorn.run(app, **common)
    return 0


def cmd_fake_upstream(args: argparse.Namespace) -> int:
    import uvicorn

    from tollgate.fakes.server import AwsTestCredentials, Pacing, create_fake_app, parse_range

    try:
        pacing = Pacing(latency=parse_range(args.latency), chunk_delay=parse_range(args.chunk_delay))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    configure_logging(json_logs=False, level="WARNING")
    print(f"tollgate fake upstream on http://{args.host}:{args.port} (OpenAI, Anthropic, Bedrock formats)")
    uvicorn.run(
        create_fake_app(pacing, aws=AwsTestCredentials(args.aws_access_key_id, args.aws_secret_access_key)),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        workers=1,
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Create or upgrade the schema of the database ``serve`` would use (``--config``, else
    ``DATABASE_URL``, else the SQLite file of the embedded config) and say what was done."""
    from tollgate.store import database_url
    from tollgate.store.schema import migrate

    url = database_url(_load(args.config), read_environment())
    if url == "memory":
        print("database_url is 'memory': nothing to migrate")
        return 0
    print(asyncio.run(migrate(url)).describe(url))
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"tollgate {__version__}")
    return 0


@dataclass(frozen=True)
class ServeDefaults:
    host: str = "0.0.0.0"
    port: int = 4000
    workers: int = 1
    health_port: int | None = None
    graceful_timeout: int = 20


def serve_defaults(env: Mapping[str, str]) -> ServeDefaults:
    """``serve``'s defaults from the environment (flags still win): LiteLLM's ``HOST``, ``PORT``,
    ``NUM_WORKERS``; ``SEPARATE_HEALTH_APP=1`` turns the health port on, at
    ``SEPARATE_HEALTH_PORT`` (LiteLLM's default 4001); ``TOLLGATE_GRACEFUL_TIMEOUT`` is how many
    seconds a SIGTERM waits for in-flight requests before cancelling them."""

    def number(name: str, default: int, minimum: int) -> int:
        raw = env.get(name, "").strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"environment variable {name}={value} must be at least {minimum}")
        return value

    base = ServeDefaults()
    health_app = env.get("SEPARATE_HEALTH_APP", "").strip().lower() in ("1", "true", "yes", "on")
    return ServeDefaults(
        host=env.get("HOST", "").strip() or base.host,
        port=number("PORT", base.port, 1),
        workers=number("NUM_WORKERS", base.workers, 1),
        health_port=number("SEPARATE_HEALTH_PORT", 4001, 1) if health_app else None,
        graceful_timeout=number("TOLLGATE_GRACEFUL_TIMEOUT", base.graceful_timeout, 0),
    )


def cmd_healthcheck(args: argparse.Namespace) -> int:
    """For a container HEALTHCHECK: the image has no curl, and this knows the configured ports."""
    url = args.url
    if url is None:
        defaults = serve_defaults(read_environment())
        url = f"http://127.0.0.1:{defaults.health_port or defaults.port}/health/liveliness"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            status = int(answer.status)
    except (OSError, ValueError) as exc:
        print(f"tollgate: {url}: {exc}", file=sys.stderr)
        return 1
    return 0 if status == 200 else 1


def parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    defaults = serve_defaults(read_environment() if env is None else env)
    root = argparse.ArgumentParser(prog="tollgate", description="A fast, self-hosted LLM gateway.")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway (the default command: `tollgate --config F`)")
    serve.add_argument("--config", help="LiteLLM-format YAML config (default: the embedded demo config)")
    serve.add_argument("--host", default=defaults.host, help="bind address (env HOST, default 0.0.0.0)")
    serve.add_argument("--port", type=int, default=defaults.port, help="env PORT, default 4000")
    serve.add_argument(
        "--workers",
        "--num_workers",
        type=int,
        default=defaults.workers,
        help="worker processes (env NUM_WORKERS, default 1)",
    )
    serve.add_argument(
        "--health-port",
        type=int,
        default=defaults.health_port,
        help="also serve probes on this port (env SEPARATE_HEALTH_APP=1, SEPARATE_HEALTH_PORT=4001)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=int,
        default=defaults.graceful_timeout,
        help="seconds SIGTERM waits for in-flight requests (env TOLLGATE_GRACEFUL_TIMEOUT, default 20)",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.add_argument("--detailed_debug", action="store_true", help="LiteLLM's flag: DEBUG logging")
    serve.add_argument(
        "--run_gunicorn", action="store_true", help="accepted for LiteLLM's images; not needed"
    )
    serve.set_defaults(func=cmd_serve)

    health = sub.add_parser("healthcheck", help="exit 0 if the local gateway answers its liveliness probe")
    health.add_argument("--url", help="default: the health port, or PORT, on 127.0.0.1")
    health.add_argument("--timeout", type=float, default=5.0)
    health.set_defaults(func=cmd_healthcheck)

    check = sub.add_parser("check-config", help="validate a config file without serving")
    check.add_argument("config")
    check.add_argument(
        "--check-connections", action="store_true", help="also connect to the database and Redis it names"
    )
    check.set_defaults(func=cmd_check_config)

    fake = sub.add_parser(
        "fake-upstream", help="run a fake LLM upstream (OpenAI, Anthropic, Bedrock formats)"
    )
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=8900)
    fake.add_argument("--latency", default="0", help="seconds before answering, e.g. 1-3")
    fake.add_argument("--chunk-delay", default="0", help="seconds between stream chunks, e.g. 0.2-0.8")
    from tollgate.fakes.sigv4 import TEST_ACCESS_KEY, TEST_SECRET_KEY

    fake.add_argument(
        "--aws-access-key-id",
        default=TEST_ACCESS_KEY,
        help=f"the access key Bedrock requests must be SigV4-signed with (default {TEST_ACCESS_KEY})",
    )
    fake.add_argument(
        "--aws-secret-access-key",
        default=TEST_SECRET_KEY,
        help="its secret (default: fakes.sigv4.TEST_SECRET_KEY)",
    )
    fake.set_defaults(func=cmd_fake_upstream)

    migrate = sub.add_parser("migrate", help="upgrade the database schema to this version's")
    migrate.add_argument("--config")
    migrate.set_defaults(func=cmd_migrate)

    version = sub.add_parser("version", help="print the version")
    version.set_defaults(func=cmd_version)

    from tollgate.cli.admin import register
    from tollgate.cli.rollups import register as register_rollups

    register(sub)
    register_rollups(sub)

    return root


def _with_default_command(argv: Sequence[str]) -> list[str]:
    """``tollgate --config F ...`` (how LiteLLM's image is started) means ``tollgate serve ...``."""
    if argv and argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        return ["serve", *argv]
    return list(argv)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parser().parse_args(_with_default_command(sys.argv[1:] if argv is None else argv))
        configure_logging(json_logs=False, level=getattr(args, "log_level", "INFO"))
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"tollgate: config error: {exc.message}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"tollgate: {exc.detail}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
