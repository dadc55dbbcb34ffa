#!/usr/bin/env bash
# The test command (README "Test"; .ci/run calls it): sets up what the tests need, then runs them.
# Idempotent: a second run reuses the virtualenv. Each run starts its own Redis and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

# Redis for the state tests (tests/state_backends.py): a private, throwaway server on a free
# loopback port (nothing on disk), stopped when the run ends — never one this run did not start.
# CI runs as root, so apt-get can install it.
if ! command -v redis-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server
fi
redis_dir="$(mktemp -d "${TMPDIR:-/tmp}/ens-autoscaler-redis.XXXXXX")"
redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly no \
    --daemonize yes --pidfile "$redis_dir/redis.pid" >/dev/null
stop_redis() {
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$redis_dir"
}
trap stop_redis EXIT
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-cli -p "$redis_port" ping >/dev/null
export TEST_REDIS_URL="redis://127.0.0.1:$redis_port/15"

# The gate: lint and types (pyproject.toml), before any test runs.
.venv/bin/ruff check --quiet functions bench localcloud tests
.venv/bin/mypy

# The credential chain must never ask the ECS metadata service (an address off this machine).
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
.venv/bin/python -m pytest "$@"
