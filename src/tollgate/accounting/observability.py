"""Builds the accounting sinks and background jobs from the config, for the composition root:
the JSON metric line, the batched spend log (with its spill directory), Prometheus metrics and
the spend-log retention purge."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tollgate.accounting.ledger import MetricLines, Sink
from tollgate.accounting.spend import RetentionPurge, SpendLog
from tollgate.config import Config
from tollgate.config.environment import PROMETHEUS_MULTIPROC_DIR, SPEND_SPILL_DIR
from tollgate.store import SpendStore
from tollgate.telemetry.metrics import Metrics

Hook = Callable[[], Awaitable[None]]


def spill_dir(config: Config, database_url: str, env: Mapping[str, str]) -> Path:
    """``TOLLGATE_SPEND_SPILL_DIR``, else ``general_settings.spend_log_spill_dir``, else beside the
    SQLite file, else a directory in the system temp dir named after the database URL."""
    chosen = env.get(SPEND_SPILL_DIR) or config.general.spend_log_spill_dir
    if chosen:
        return Path(str(chosen))
    if database_url.startswith("sqlite") and ":///" in database_url:
        # sqlite:///relative.db is relative to the working directory; sqlite:////abs.db absolute.
        path = database_url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            return Path(path).resolve().parent / "tollgate-spend-spill"
    digest = hashlib.sha256(database_url.encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"tollgate-spend-spill-{digest}"


@dataclass
class Observability:
    sinks: list[Sink] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    spend_log: SpendLog | None = None
    on_startup: list[Hook] = field(default_factory=list)
    on_shutdown: list[Hook] = field(default_factory=list)

    @classmethod
    def build(
        cls, config: Config, store: SpendStore, database_url: str, env: Mapping[str, str]
    ) -> Observability:
        """Startup hooks go before others; shutdown hooks must run before the store closes."""
        out = cls(metrics=Metrics(multiprocess_dir=env.get(PROMETHEUS_MULTIPROC_DIR) or None))
        general = config.general
        if config.litellm.json_logs or config.litellm.callbacks:
            out.sinks.append(MetricLines())
        out.sinks.append(out.metrics)
        if not general.disable_spend_logs:
            out.spend_log = SpendLog(
                store,
                spill_dir(config, database_url, env),
                interval=general.proxy_batch_write_at,
                batch_size=general.spend_log_batch_size,
                store_prompts=general.store_prompts_in_spend_logs,
            )
            out.sinks.append(out.spend_log)
            out.on_startup.append(out.spend_log.start)
            out.on_shutdown.append(out.spend_log.stop)
        if general.maximum_spend_logs_retention_period:
            purge = RetentionPurge(store, general.maximum_spend_logs_retention_period)
            out.on_startup.append(purge.start)
            out.on_shutdown.append(purge.stop)

        async def process_exit() -> None:
            out.metrics.process_exit()

        out.on_shutdown.append(process_exit)
        return out
