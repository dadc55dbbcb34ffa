#!/usr/bin/env bash
# The test command (README "Test"; .ci/run calls it): sets up what the tests need, then runs them.
# Idempotent: a second run reuses the virtualenv and the running Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

# Redis for the state tests (tests/state_backends.py): a private, throwaway instance on 6390
# (loopback only, nothing on disk), started once and reused by later runs. CI runs as root.
if ! command -v redis-server >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server
fi
if ! redis-cli -p 6390 ping >/dev/null 2>&1; then
    redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --daemonize yes >/dev/null
    for _ in $(seq 50); do redis-cli -p 6390 ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
export TEST_REDIS_URL=redis://127.0.0.1:6390/15

exec .venv/bin/python -m pytest "$@"
