#!/usr/bin/env bash
# The test command (README "The two commands"; .ci/run calls it): sets up what the tests need, then runs them.
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
source tests/private-redis.sh
start_private_redis
export TEST_REDIS_URL="$PRIVATE_REDIS_URL/15"

# The gate: lint and types (pyproject.toml), before any test runs.
.venv/bin/ruff check --quiet functions bench localcloud tests
.venv/bin/mypy

# The credential chain must never ask the ECS metadata service (an address off this machine).
export ALIBABA_CLOUD_ECS_METADATA_DISABLED=true
.venv/bin/python -m pytest "$@"
