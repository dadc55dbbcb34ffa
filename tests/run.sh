#!/usr/bin/env bash
# The test command (README "Test"; .ci/run calls it): sets up what the tests need, then runs them.
# Idempotent: a second run reuses the virtualenv and the running Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt -r tests/requirements.txt

exec .venv/bin/python -m pytest "$@"
