#!/usr/bin/env bash
# Flame graph of a tollgate worker under wrk load, with py-spy from the bench venv (.bench/venv,
# never a tollgate dependency). Output: bench/results/flame-<target>-<mode>.svg
#   bench/profile.sh                                   # tollgate, JSON, 10 s at concurrency 16
#   bench/profile.sh --profile-mode sse --profile-seconds 20
#   bench/profile.sh --profile-target litellm          # the same view of the LiteLLM proxy
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
exec "$PY" bench/run.py --profile "$@"
