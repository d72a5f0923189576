"""Command line: ``serve``, ``check-config``, ``migrate``, ``fake-upstream``, ``version`` and the
admin commands (keys, users, teams, onboard). A thin shell over ``bootstrap`` and ``admin``.

Configuration problems end the process with one line on stderr and exit code 2, never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Sequence

from tollgate import __version__
from tollgate.config import Config, load_config
from tollgate.config.environment import CONFIG, PROMETHEUS_MULTIPROC_DIR, read_environment
from tollgate.errors import ConfigError
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
    for warning in config.warnings:
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
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tollgate.bootstrap import build

    config = _load(args.config)
    configure_logging(json_logs=config.litellm.json_logs, level=args.log_level)
    _report_warnings(config)
    if args.config:
        os.environ[CONFIG] = os.path.abspath(args.config)  # for the worker processes
    common = {
        "host": args.host,
        "port": args.port,
        "loop": "uvloop",
        "http": "httptools",
        "log_level": args.log_level.lower(),
        "access_log": False,
        "timeout_keep_alive": 75,
        "log_config": None,
    }
    from tollgate.bootstrap import prepare_database

    asyncio.run(prepare_database(config, read_environment()))
    if args.health_port:
        _serve_health_in_thread(args.host, args.health_port)
    if args.workers > 1:
        # Prometheus counters are per process; multiprocess mode sums the workers' files. It must
        # be set before any worker imports prometheus_client.
        if not read_environment().get(PROMETHEUS_MULTIPROC_DIR):
            os.environ[PROMETHEUS_MULTIPROC_DIR] = tempfile.mkdtemp(prefix="tollgate-prom-")
        uvicorn.run("tollgate.bootstrap:app_from_env", factory=True, workers=args.workers, **common)
        return 0
    app = build(config)
    log.info("tollgate %s serving on http://%s:%d", __version__, args.host, args.port)
    uvicorn.run(app, **common)
    return 0


def _serve_health_in_thread(host: str, port: int) -> None:
    """The health port runs its own event loop, so probes never queue behind inference work."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def alive(request: Request) -> JSONResponse:
        return JSONResponse("I'm alive!")

    async def ready(request: Request) -> JSONResponse:
        return JSONResponse({"status": "healthy", "tollgate_version": __version__})

    app = Starlette()
    app.add_route("/health/liveliness", alive, methods=["GET"])
    app.add_route("/health/liveness", alive, methods=["GET"])
    app.add_route("/health/readiness", ready, methods=["GET"])
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False))
    # uvicorn installs signal handlers only on the main thread, so this server leaves them alone.
    threading.Thread(target=lambda: asyncio.run(server.serve()), name="health", daemon=True).start()


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
    from tollgate.store import database_url
    from tollgate.store.sql import migrate

    url = database_url(_load(args.config), read_environment())
    if url == "memory":
        print("database_url is 'memory': nothing to migrate")
        return 0
    asyncio.run(migrate(url))
    print("database schema is up to date")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    print(f"tollgate {__version__}")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tollgate", description="A fast, self-hosted LLM gateway.")
    sub = root.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="LiteLLM-format YAML config (default: the embedded demo config)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=4000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--health-port", type=int, help="also serve liveliness/readiness on this port")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(func=cmd_serve)

    check = sub.add_parser("check-config", help="validate a config file without serving")
    check.add_argument("config")
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

    register(sub)

    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(json_logs=False, level=getattr(args, "log_level", "INFO"))
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        print(f"tollgate: config error: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
