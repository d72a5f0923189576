"""Constants and the progress log shared by the bench modules (``bench/run.py`` is the driver)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
STATE = REPO / ".bench"
BENCH_VENV = STATE / "venv"
LITELLM_VERSION = "1.106.2"
LITELLM_SPEC = f"litellm[proxy]=={LITELLM_VERSION}"
MASTER_KEY = "sk-bench"
LIVENESS = "/health/liveliness"
CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = {"model": "bench-model", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 32}
WRK_SCRIPTS = {
    "json": BENCH / "wrk" / "chat_json.lua",
    "sse": BENCH / "wrk" / "chat_sse.lua",
    "sse-usage": BENCH / "wrk" / "chat_sse_usage.lua",  # stream_options.include_usage, as SDKs send
    # The response cache (bench/cache_scenario.py): opted out, always a miss, always a hit.
    **{
        f"cache-{kind}{suffix}": BENCH / "wrk" / f"cache_{kind}{suffix.replace('-', '_')}.lua"
        for kind in ("off", "miss", "hit")
        for suffix in ("", "-sse")
    },
}

CONFIG_TEMPLATE = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/bench-model
      api_base: "http://127.0.0.1:{port}/v1"
      api_key: sk-upstream
general_settings: {{master_key: {key}}}
"""


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def fmt(v: float | None, digits: int = 2) -> str:
    return "—" if v is None else f"{v:.{digits}f}"
