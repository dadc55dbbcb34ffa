#!/usr/bin/env bash
# The benchmark command (README "Performance"; not part of the test command): set up the
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
    redis_dir="$(mktemp -d "${TMPDIR:-/tmp}/ens-autoscaler-bench-redis.XXXXXX")"
    redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly no \
        --daemonize yes --pidfile "$redis_dir/redis.pid" >/dev/null
    stop_redis() {
        redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
        rm -rf "$redis_dir"
    }
    trap stop_redis EXIT
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    export BENCH_REDIS_URL="redis://127.0.0.1:$redis_port"
else
    echo "bench: no redis-server on PATH: the Redis rows are left out" >&2
fi
.venv/bin/python -m bench "$@"
