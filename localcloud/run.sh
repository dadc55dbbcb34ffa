#!/usr/bin/env bash
# The README's run command: set up (a virtualenv with requirements.txt), then run the
# function once against the local emulator and SQLite. Usage: localcloud/run.sh [EVENT.json] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
exec .venv/bin/python -m localcloud.run "$@"
