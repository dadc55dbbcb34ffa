#!/usr/bin/env bash
# The benchmark command (docs/internals.md "Performance"; not part of the test command): set up the
# virtualenv with requirements.txt (as localcloud/run.sh does), start a private Redis for the
# Redis rows (as tests/run.sh does; without redis-server those rows are left out, and the report
# says so), then run every benchmark against the local emulator and print one table.
# Usage: bench/run.sh [--json] [--reps 7] [--warm-events 200] [--warm-ledger 20]
#                     [--no-bytecode] [--only cold,warm,planner,batch,book] [--function-dir DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
if command -v redis-server >/dev/null; then
    source tests/private-redis.sh
    start_private_redis
    export BENCH_REDIS_URL="$PRIVATE_REDIS_URL"
else
    echo "bench: no redis-server on PATH: the Redis rows are left out" >&2
fi
.venv/bin/python -m bench "$@"
